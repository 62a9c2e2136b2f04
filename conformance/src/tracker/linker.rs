//! Several associations of one capture or run, and the recovery links
//! between them.

use super::{
    Anomaly, AnomalyKind, AssocId, Delivery, Inheritance, Invariant, Observed, Phase, Step, TimelineRow, TrackerConfig,
    TurnEvent, TurnTracker,
};
use rtse_codec::capture::ConnIdHasher;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::hash::{Hash, Hasher};

#[derive(Debug, Clone)]
struct Linked {
    /// `None` once retired.
    tracker: Option<Box<TurnTracker>>,
    /// Its record in [`Records`] once retired.
    retired: Option<u64>,
    /// The host given to [`AssociationLinker::open`] (UTF-8), held in
    /// place up to 30 octets: an IPv4 address is no allocation.
    initiator: Option<super::RefOctets>,
    recovers: Option<AssocId>,
    /// Recovery linked at CN, hand-over waits for the AC.
    handover_pending: bool,
}

/// What a retired association keeps: enough to be found and recovered.
#[derive(Debug, Clone)]
struct Retired {
    conn_ref: Option<super::ConnRef>,
    recovered_by: Option<AssocId>,
    /// What a recovery would inherit (lost associations only).
    inheritance: Option<Box<Inheritance>>,
}

/// The retired associations' records, in retirement order (the oldest
/// are forgotten first), each with its association's id, numbered from
/// 0 in retirement order: held in one deque, where a box each was an
/// allocation per association that glibc served the slow way (records
/// live long, so no freed chunk of their size waits in its caches).
#[derive(Debug, Clone, Default)]
struct Records {
    list: VecDeque<(u32, Retired)>,
    /// Number of the record at the front.
    first: u64,
}

impl Records {
    fn get(&self, n: u64) -> Option<&Retired> {
        let at = usize::try_from(n.checked_sub(self.first)?).ok()?;
        self.list.get(at).map(|(_, r)| r)
    }
    fn get_mut(&mut self, n: u64) -> Option<&mut Retired> {
        let at = usize::try_from(n.checked_sub(self.first)?).ok()?;
        self.list.get_mut(at).map(|(_, r)| r)
    }
    /// Appends `r`, the record of `id`; returns its number.
    fn push(&mut self, id: u32, r: Retired) -> u64 {
        self.list.push_back((id, r));
        self.first + (self.list.len() as u64 - 1)
    }
    /// Forgets the oldest record.
    fn pop_front(&mut self) -> Option<(u32, Retired)> {
        let r = self.list.pop_front()?;
        self.first += 1;
        Some(r)
    }
    fn len(&self) -> usize {
        self.list.len()
    }
}

impl Linked {
    fn record<'a>(&self, recs: &'a Records) -> Option<&'a Retired> {
        recs.get(self.retired?)
    }
    fn conn_ref<'a>(&'a self, recs: &'a Records) -> Option<&'a super::ConnRef> {
        match (&self.tracker, self.record(recs)) {
            (Some(t), _) => t.conn_ref(),
            (None, Some(r)) => r.conn_ref.as_ref(),
            _ => None,
        }
    }
    fn recovered_by(&self, recs: &Records) -> Option<AssocId> {
        match (&self.tracker, self.record(recs)) {
            (Some(t), _) => t.recovered_by(),
            (None, Some(r)) => r.recovered_by,
            _ => None,
        }
    }
    fn inheritance(&self, id: AssocId, recs: &Records) -> Inheritance {
        match (&self.tracker, self.record(recs)) {
            (Some(t), _) => t.inheritance(),
            (None, Some(r)) => r.inheritance.as_deref().cloned().unwrap_or_else(|| Inheritance {
                from: Some(id),
                conn_ref: r.conn_ref.clone(),
                ..Inheritance::default()
            }),
            _ => Inheritance::default(),
        }
    }
    fn mark_recovered_by(&mut self, by: AssocId, recs: &mut Records) {
        if let Some(t) = &mut self.tracker {
            t.mark_recovered_by(by);
        } else if let Some(r) = self.retired.and_then(|n| recs.get_mut(n)) {
            r.recovered_by = Some(by);
            r.inheritance = None;
        }
    }
}

/// Holds the associations of a capture (or simulation run), one
/// [`TurnTracker`] each, and links a recovering association to the one it
/// replaces.
///
/// When an association's CN carries `recover: Some(r)`, the linker finds the
/// association whose own CN Connection Identifier matches `r` (following
/// earlier recoveries to the latest link of the chain), hands its
/// [`Inheritance`](super::Inheritance) to the new tracker, and, once the
/// recovery's AC is seen, marks the old one recovered (its unconfirmed
/// transfers become the new one's business). A refused recovery takes
/// nothing over. A recovery CN naming no known connection raises
/// `recovery-unlinked`; one sent by the host that was the responder of the
/// lost association (when hosts are given to [`Self::open`]) raises
/// `recovery-by-responder`.
///
/// It also keeps every label delivered by any association, so that a
/// delivery repeated on an unrelated association is `transfer-duplicated`,
/// and an unconfirmed transfer whose label was delivered elsewhere is not
/// `transfer-lost`.
#[derive(Debug, Clone, Default)]
pub struct AssociationLinker {
    cfg: TrackerConfig,
    /// Associations by id (ids are handed out in order; retired ones
    /// beyond [`Self::with_retention`]'s bound are forgotten).
    assocs: HashMap<u32, Linked, BuildHasherDefault<ConnIdHasher>>,
    next_id: u32,
    /// Retired associations' records, oldest first (for forgetting).
    retired: Records,
    /// Delivered labels, oldest first (for forgetting).
    delivered_order: VecDeque<String>,
    /// Retired associations and delivered labels kept at most.
    retention: usize,
    /// Hashed (std's keyed SipHash: labels are the peers' choice), not a
    /// B-tree: an insertion compared the label with some ten others and
    /// cost about 950 instructions (1.7 M at 10 MB); nothing iterates it.
    delivered: HashMap<String, Delivery>,
    /// Associations by a hash of their Connection Identifier's calling and
    /// common references (what [`super::ConnRef::matches`] always
    /// compares), in id order: finding the association a recovery names is
    /// a look-up, not a scan of every association of the capture.
    /// FxHash-ed (the key is already a hash).
    by_ref: HashMap<u64, Ids, crate::fx::FxBuild>,
    /// Trackers given back after their report ([`Self::recycle`]), reset
    /// for the next associations: a tracker and its transfer list were
    /// allocated per association and freed after its report.
    // Boxed: a box moves back into `Linked::tracker` as it is.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<TurnTracker>>,
}

/// Trackers kept for reuse at most (associations are reported about as
/// fast as they open: a few cover the steady state).
const SPARE_TRACKERS: usize = 16;

/// The associations of one `by_ref` key, in id order: almost always one
/// (each CN's identifier is its own), held without a vector (a vector of
/// one was an allocation per CN).
#[derive(Debug, Clone)]
enum Ids {
    One(u32),
    Many(Vec<u32>),
}

impl Ids {
    fn as_slice(&self) -> &[u32] {
        match self {
            Ids::One(i) => std::slice::from_ref(i),
            Ids::Many(v) => v,
        }
    }

    /// Adds `id` in order (once).
    fn insert(&mut self, id: u32) {
        match self {
            Ids::One(i) if *i == id => {}
            Ids::One(i) => {
                let (a, b) = if *i < id { (*i, id) } else { (id, *i) };
                *self = Ids::Many(vec![a, b]);
            }
            Ids::Many(v) => {
                if let Err(at) = v.binary_search(&id) {
                    v.insert(at, id);
                }
            }
        }
    }

    /// Removes `id`; `true` when none is left.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            Ids::One(i) => *i == id,
            Ids::Many(v) => {
                if let Ok(at) = v.binary_search(&id) {
                    v.remove(at);
                }
                v.is_empty()
            }
        }
    }
}

/// The index key of a Connection Identifier (see `by_ref`): FxHash, as a
/// match is then checked in full ([`super::ConnRef::matches`]), so
/// collisions cost only time (SipHash cost more than the rest of indexing
/// a CN).
fn ref_key(r: &super::ConnRef) -> u64 {
    let mut h = crate::fx::Fx::default();
    r.calling.hash(&mut h);
    r.common.hash(&mut h);
    h.finish()
}

impl AssociationLinker {
    /// An empty linker; every tracker gets `cfg`.
    #[must_use]
    pub fn new(cfg: TrackerConfig) -> Self {
        AssociationLinker {
            cfg,
            assocs: HashMap::default(),
            next_id: 0,
            retired: Records::default(),
            delivered_order: VecDeque::new(),
            retention: usize::MAX,
            delivered: HashMap::new(),
            by_ref: HashMap::default(),
            spare: Vec::new(),
        }
    }

    /// Keeps at most `n` retired associations (see [`Self::retire`]) and
    /// `n` delivered labels, forgetting the oldest beyond: memory stays
    /// bounded on a capture of any length. A recovery naming a forgotten
    /// association is then `recovery-unlinked`, and a label delivered again
    /// after `n` later deliveries is not seen as a duplicate. Unbounded
    /// unless set.
    #[must_use]
    pub fn with_retention(mut self, n: usize) -> Self {
        self.retention = n.max(1);
        self
    }

    /// A new association (a new transport connection). `initiator` names the
    /// host that opened it (e.g. its IP address), when known: it is used
    /// only to tell who recovers.
    pub fn open(&mut self, initiator: Option<&str>) -> AssocId {
        self.open_host(initiator.map(str::as_bytes))
    }

    /// [`Self::open`] with the host's name as octets (UTF-8: an
    /// address written by the caller, without a check of its own; other
    /// octets are shown as `String::from_utf8_lossy` shows them).
    pub fn open_host(&mut self, initiator: Option<&[u8]>) -> AssocId {
        let id = AssocId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let mut tracker = match self.spare.pop() {
            Some(mut t) => {
                t.reset(self.cfg.clone());
                t
            }
            None => Box::new(TurnTracker::new(self.cfg.clone())),
        };
        tracker.set_id(id);
        self.assocs.insert(
            id.0,
            Linked {
                tracker: Some(tracker),
                retired: None,
                initiator: initiator.map(super::RefOctets::from),
                recovers: None,
                handover_pending: false,
            },
        );
        id
    }

    fn get(&self, id: AssocId) -> Option<&Linked> {
        self.assocs.get(&id.0)
    }

    fn get_mut(&mut self, id: AssocId) -> Option<&mut Linked> {
        self.assocs.get_mut(&id.0)
    }

    /// The association whose own Connection Identifier `r` names, followed
    /// along accepted recoveries to the latest one.
    fn find_recovered(&self, me: AssocId, r: &super::ConnRef) -> Option<AssocId> {
        // The latest association (highest id) other than `me` whose own
        // Connection Identifier `r` matches.
        let found =
            self.by_ref.get(&ref_key(r))?.as_slice().iter().rev().map(|&i| AssocId(i)).find(|&id| {
                id != me && self.get(id).and_then(|a| a.conn_ref(&self.retired)).is_some_and(|c| r.matches(c))
            });
        let mut cur = found?;
        for _ in 0..=self.assocs.len() {
            match self.get(cur).and_then(|a| a.recovered_by(&self.retired)) {
                Some(next) if next != me => cur = next,
                _ => break,
            }
        }
        Some(cur)
    }

    /// Feeds one event of association `id`; `None` if `id` is unknown.
    pub fn observe(&mut self, id: AssocId, ev: &Observed) -> Option<Step> {
        let mut link_note: Option<(AnomalyKind, String)> = None;
        if let TurnEvent::Connect(c) = &ev.event {
            let already = self.get(id)?.recovers.is_some();
            if let (Some(r), false) = (&c.recover, already) {
                match self.find_recovered(id, r) {
                    Some(old) => {
                        let (inh, old_host) = {
                            let o = self.get(old)?;
                            (o.inheritance(old, &self.retired), o.initiator.clone())
                        };
                        let me = self.get_mut(id)?;
                        me.tracker.as_mut()?.inherit(inh);
                        me.recovers = Some(old);
                        me.handover_pending = true;
                        if let (Some(a), Some(b)) = (&old_host, &me.initiator) {
                            if a != b {
                                // Text given to `open`: lossless.
                                let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
                                link_note = Some((
                                    AnomalyKind::RecoveryByResponder,
                                    format!(
                                        "recovery of {old} opened by {b}, but {old} was initiated by {a}: only the association-initiator recovers"
                                    ),
                                ));
                            }
                        }
                    }
                    None => {
                        link_note = Some((
                            AnomalyKind::RecoveryUnlinked,
                            format!("recovery CN quotes connection {r}, not seen (the capture may start after it)"),
                        ));
                    }
                }
            }
        }
        // One look-up of `id` for the rest (three cost as much as the
        // linking itself): the other fields are borrowed apart.
        let Self { assocs, by_ref, delivered, delivered_order, retention, retired, .. } = self;
        let me = assocs.get_mut(&id.0)?;
        let t = me.tracker.as_mut()?;
        let mut step = t.observe(ev);
        if matches!(ev.event, TurnEvent::Connect(_)) {
            // A CN is taken once per association: index its identifier.
            if let Some(key) = t.conn_ref().map(ref_key) {
                by_ref.entry(key).and_modify(|ids| ids.insert(id.0)).or_insert(Ids::One(id.0));
            }
        }
        if let Some((kind, detail)) = link_note {
            t.push_anomaly(kind, Some(ev.from), detail);
            step.anomalies.end = t.anomalies().len();
        }
        // Hand-over once the recovery is accepted (or dropped if refused).
        let mut handed_over = None;
        if me.handover_pending {
            match t.phase() {
                Phase::Established | Phase::Releasing => {
                    me.handover_pending = false;
                    handed_over = me.recovers;
                }
                Phase::Connecting => {}
                _ => me.handover_pending = false,
            }
        }
        // Deliveries across unrelated associations.
        if let Some((tr, reported)) = t.last_delivery() {
            if let Some(label) = tr.label.clone() {
                let (no, receiver, seq) = (tr.no, tr.sender.peer(), tr.confirmed_seq.unwrap_or(ev.seq));
                // The label hashed once (SipHash, some 250 instructions):
                // a look-up and then an insertion hashed it twice.
                match delivered.entry(label) {
                    Entry::Occupied(o) => {
                        let d = *o.get();
                        if d.assoc != Some(id) && !reported {
                            let label = o.key();
                            let first = d.assoc.map_or_else(String::new, |a| format!(" on association {a}"));
                            t.push_anomaly(
                                AnomalyKind::TransferDuplicated,
                                Some(receiver.peer()),
                                format!(
                                    "{label} delivered again by transfer {no} to {receiver}: first delivered (AEA) at seq {}{first}",
                                    d.seq
                                ),
                            );
                            step.anomalies.end = t.anomalies().len();
                        }
                    }
                    Entry::Vacant(v) => {
                        let label = v.key().clone();
                        v.insert(Delivery { assoc: Some(id), seq, receiver });
                        delivered_order.push_back(label);
                        while delivered_order.len() > *retention {
                            if let Some(old) = delivered_order.pop_front() {
                                delivered.remove(&old);
                            }
                        }
                    }
                }
            }
        }
        if let Some(old) = handed_over {
            if let Some(o) = assocs.get_mut(&old.0) {
                o.mark_recovered_by(id, retired);
            }
        }
        Some(step)
    }

    /// The timeline row for an event just observed on `id`.
    #[must_use]
    pub fn row(&self, id: AssocId, ev: &Observed, step: &Step) -> Option<TimelineRow> {
        Some(self.get(id)?.tracker.as_ref()?.row(ev, step))
    }

    /// End of the capture/run: judges transfers re-sent on other
    /// associations, then finishes every tracker. Idempotent.
    pub fn finish(&mut self) {
        for (&i, a) in &mut self.assocs {
            let me = Some(AssocId(i));
            let delivered = &self.delivered;
            if let Some(t) = &mut a.tracker {
                t.set_delivered_elsewhere(|l| delivered.get(l).is_some_and(|d| d.assoc != me));
                t.finish();
            }
        }
    }

    /// Finishes one association before the end of the capture/run (a
    /// streaming reader that reports associations as they end): judges its
    /// transfers against the labels delivered elsewhere so far, then
    /// [`TurnTracker::finish`]. A later [`Self::finish`] adds nothing to it.
    /// Later events of `id` are still accepted.
    pub fn finish_one(&mut self, id: AssocId) {
        let delivered = &self.delivered;
        if let Some(t) = self.assocs.get_mut(&id.0).and_then(|a| a.tracker.as_mut()) {
            t.set_delivered_elsewhere(|l| delivered.get(l).is_some_and(|d| d.assoc != Some(id)));
            t.finish();
        }
    }

    /// Retires a finished association (see [`Self::finish_one`]) to save
    /// memory on long captures: its tracker is dropped ([`Self::tracker`]
    /// answers `None`, its anomalies are no longer listed), and only what a
    /// later recovery needs is kept: its Connection Identifier, who
    /// recovered it, and, if it was lost and not yet recovered, what a
    /// recovery would inherit. Labels it delivered stay in
    /// [`Self::delivered`]. Later events of `id` are ignored. Returns the
    /// tracker (`None` if `id` is unknown or already retired), for the
    /// caller's report, less its Connection Identifier (moved, not copied,
    /// into what is kept).
    pub fn retire(&mut self, id: AssocId) -> Option<Box<TurnTracker>> {
        let a = self.assocs.get_mut(&id.0)?;
        let mut t = a.tracker.take()?;
        let recoverable = t.recovered_by().is_none() && matches!(t.phase(), Phase::Lost | Phase::Unobserved);
        let record = Retired {
            // Before the reference moves out (an inheritance quotes it).
            inheritance: recoverable.then(|| Box::new(t.inheritance())),
            conn_ref: t.take_conn_ref(),
            recovered_by: t.recovered_by(),
        };
        a.retired = Some(self.retired.push(id.0, record));
        while self.retired.len() > self.retention {
            let Some((old, record)) = self.retired.pop_front() else { break };
            // Retired, so its reference is its record's.
            let Some(_gone) = self.assocs.remove(&old) else { continue };
            if let Some(key) = record.conn_ref.as_ref().map(ref_key) {
                if self.by_ref.get_mut(&key).is_some_and(|ids| ids.remove(old)) {
                    self.by_ref.remove(&key);
                }
            }
        }
        Some(t)
    }

    /// Takes back a tracker [`Self::retire`] returned, once its report is
    /// made: a later [`Self::open`] reuses it, reset to a new tracker's
    /// state (its lists' memory kept).
    pub fn recycle(&mut self, t: Box<TurnTracker>) {
        if self.spare.len() < SPARE_TRACKERS {
            self.spare.push(t);
        }
    }

    /// Time passed without an event on `id`: see [`TurnTracker::advance`].
    /// `None` if `id` is unknown or retired.
    pub fn advance(&mut self, id: AssocId, time_ns: u64) -> Option<std::ops::Range<usize>> {
        Some(self.get_mut(id)?.tracker.as_mut()?.advance(time_ns))
    }

    /// The tracker of `id` (`None` once retired).
    #[must_use]
    pub fn tracker(&self, id: AssocId) -> Option<&TurnTracker> {
        self.get(id)?.tracker.as_deref()
    }

    /// The association `id` recovers.
    #[must_use]
    pub fn recovers(&self, id: AssocId) -> Option<AssocId> {
        self.get(id)?.recovers
    }

    /// The association that recovered `id` (AC seen).
    #[must_use]
    pub fn recovered_by(&self, id: AssocId) -> Option<AssocId> {
        self.get(id)?.recovered_by(&self.retired)
    }

    /// All association ids still known, in opening order.
    pub fn ids(&self) -> impl Iterator<Item = AssocId> + '_ {
        let mut ids: Vec<u32> = self.assocs.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().map(AssocId)
    }

    /// Every anomaly of every association, association by association.
    pub fn anomalies(&self) -> impl Iterator<Item = (AssocId, &Anomaly)> + '_ {
        self.ids()
            .filter_map(|id| Some((id, self.get(id)?)))
            .flat_map(|(id, a)| a.tracker.iter().flat_map(|t| t.anomalies().iter()).map(move |an| (id, an)))
    }

    /// Labels delivered by any association.
    #[must_use]
    pub fn delivered(&self) -> &HashMap<String, Delivery> {
        &self.delivered
    }

    /// The first anomaly (in association order) that breaks `inv`.
    pub fn check(&self, inv: Invariant) -> Result<(), (AssocId, &Anomaly)> {
        for id in self.ids() {
            if let Some(t) = self.get(id).and_then(|a| a.tracker.as_ref()) {
                t.check(inv).map_err(|an| (id, an))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Ids;
    use crate::tracker::{AnomalyKind, AssociationLinker, ConnRef, Connect, Observed, Side, TrackerConfig, TurnEvent};

    /// A retired record keeps its number while older ones are forgotten,
    /// and a forgotten number finds nothing.
    #[test]
    fn records_keep_their_numbers() {
        use super::{Records, Retired};
        use crate::tracker::AssocId;
        let rec = |by: u32| Retired { conn_ref: None, recovered_by: Some(AssocId(by)), inheritance: None };
        let mut r = Records::default();
        let ns: Vec<u64> = (0..5).map(|i| r.push(i + 10, rec(i))).collect();
        assert_eq!(ns, [0, 1, 2, 3, 4]);
        assert_eq!(r.pop_front().map(|(id, x)| (id, x.recovered_by)), Some((10, Some(AssocId(0)))));
        assert_eq!(r.pop_front().map(|(id, _)| id), Some(11));
        assert_eq!(r.push(99, rec(9)), 5);
        assert!(r.get(0).is_none() && r.get(1).is_none() && r.get(6).is_none());
        for n in 2..=5u64 {
            let want = if n == 5 { 9 } else { n as u32 };
            assert_eq!(r.get(n).unwrap().recovered_by, Some(AssocId(want)));
        }
        r.get_mut(3).unwrap().recovered_by = None;
        assert_eq!(r.get(3).unwrap().recovered_by, None);
        assert_eq!(r.len(), 4);
    }

    /// A recovery opened by another host names both hosts as given to
    /// `open`, on both sides of the inline bound of their copies.
    #[test]
    fn recovery_by_responder_names_the_hosts_given() {
        let long = "fe80:1234:5678:9abc:def0:1234:5678:9abc%4294967295";
        let pairs = [("10.0.0.1", "10.0.0.2"), ("10.0.0.1", long), (long, "é日本"), ("", "x")];
        for (k, (a, b)) in pairs.into_iter().chain(pairs).enumerate() {
            let mut l = AssociationLinker::new(TrackerConfig::default());
            // The first half through `open`, the second through `open_host`.
            let open = |l: &mut AssociationLinker, h: &str| {
                if k < pairs.len() {
                    l.open(Some(h))
                } else {
                    l.open_host(Some(h.as_bytes()))
                }
            };
            let cn = |recover: Option<ConnRef>| Observed {
                seq: 1,
                time_ns: 0,
                from: Side::Initiator,
                event: TurnEvent::Connect(Box::new(Connect {
                    conn_ref: Some(ConnRef::new("MTA", "250101120000Z")),
                    recover,
                    ..Connect::default()
                })),
            };
            let old = open(&mut l, a);
            l.observe(old, &cn(None));
            let new = open(&mut l, b);
            l.observe(new, &cn(Some(ConnRef::new("MTA", "250101120000Z"))));
            let t = l.tracker(new).unwrap();
            let d = t.anomalies().iter().find(|x| x.kind == AnomalyKind::RecoveryByResponder).unwrap();
            assert_eq!(
                d.detail,
                format!("recovery of {old} opened by {b}, but {old} was initiated by {a}: only the association-initiator recovers")
            );
        }
    }

    /// `Ids` keeps the sorted, duplicate-free list a `Vec` kept, and
    /// reports it empty exactly when the `Vec` would be, under any
    /// sequence of insertions and removals (present or not).
    #[test]
    fn ids_follow_a_sorted_vec() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let first = (seed % 5) as u32;
            let mut ids = Ids::One(first);
            let mut model = vec![first];
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = (seed >> 8) as u32 % 6;
                if seed % 3 == 0 {
                    let gone = ids.remove(id);
                    if let Ok(at) = model.binary_search(&id) {
                        model.remove(at);
                    }
                    assert_eq!(gone, model.is_empty());
                    if gone {
                        break;
                    }
                } else {
                    ids.insert(id);
                    if let Err(at) = model.binary_search(&id) {
                        model.insert(at, id);
                    }
                }
                assert_eq!(ids.as_slice(), &model[..]);
            }
        }
    }
}
