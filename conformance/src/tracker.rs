//! The Turn tracker: the single place that knows the RTSE Turn rules.
//!
//! A [`TurnTracker`] is fed the Turn-relevant events of **one association**
//! (one session connection over one transport connection), both directions,
//! in observation order ([`Observed`]), and answers after each one: who holds
//! the Turn ([`TurnHolder`]), who owns each session token, whether a GTC is in
//! flight, whether a please is outstanding, which activity is open, which
//! transfers (with their P1 labels) are confirmed; and it records
//! [`Anomaly`]s. The [`AssociationLinker`] links a recovering association to
//! the one it replaces and hands over what the lost one knew.
//!
//! Users: `rtse timeline` (holder after each PDU, anomalies), the simulator's
//! invariants ([`Invariant`]), the conformance verdicts. None of them
//! re-implements a Turn rule.
//!
//! # The rules (turn-and-recovery.md, rtse.md §3-§6, session.md §3-§6)
//!
//! * **The Turn** is the data, synchronize-minor and major/activity session
//!   tokens together (those of them that are available; RTSE selects
//!   half-duplex, minor synchronize, activity management and exceptions, so
//!   all three). The release token is tracked but is not part of the Turn.
//! * **Initial position**: the Token Setting Item (PI 26, two bits per
//!   token: `00` initiator's side, `01` responder's side, `10` called
//!   SS-user's choice, `11` reserved) of the CN **as resolved by the AC**.
//!   The AC's value is authoritative. If the AC carries none, a value the
//!   CN fixed (`00`/`01`) stands; a CN "choice" the AC does not resolve is
//!   an `invalid-token-setting` and the token is unknown. If neither
//!   carries the item, X.225 (from memory) says "initiator's side"; we do
//!   not guess and answer [`TurnHolder::Unknown`] (configurable:
//!   [`AbsentTokenSetting`]) until behaviour reveals the holder.
//! * **Moves**: GTC (S-CONTROL-GIVE, all available tokens) puts them in
//!   transit ([`TurnHolder::InTransit`]) until the peer SPM's GTA is seen;
//!   GT moves the tokens it names at once. PT never moves anything.
//! * **The one rule after recovery**: the holder of a recovered association
//!   comes *only* from the recovery connection's Token Setting as resolved
//!   by its AC — never from what either side remembers of the lost
//!   connection (give in flight, please, activity). Remembered state is
//!   used only to judge the recovery: which transfers must be resumed
//!   (AR, from the last checkpoint the receiver confirmed) or restarted,
//!   which labels were already delivered, and whether the Turn was at risk.
//!   If the Token Setting of the recovery is not visible, the holder is
//!   `Unknown` until behaviour reveals it.
//! * **Behaviour**: a side sending AS/AR/DT/MIP/AE/AI/AD/GTC/GT/FN behaves as
//!   holder; a side sending PT, MIA, AEA or ED behaves as non-holder. Where
//!   ownership is unknown (capture started mid-association, no Token
//!   Setting) the first such behaviour *infers* it (no anomaly); where it is
//!   known, contrary behaviour is an anomaly.
//! * A mid-association start (first event is neither T-OPEN nor CN/AC/RF)
//!   gives an established connection with unknown tokens.
//! * A gap (`T-GAP`: octets of the connection not captured) makes the holder
//!   `unknown`; the next event resumes observation as a mid-association
//!   start would (what the gap held is not guessed).
//!
//! # Anomalies (see [`AnomalyKind`])
//!
//! * `data-without-turn`: holder-only SPDU from a side not owning the
//!   tokens it needs (reported once per side between token moves).
//! * `two-holders`: both sides have behaved as holder since the last move.
//! * `please-from-holder`: PT from the owner of the tokens asked for.
//! * `please-unanswered`: a PT to an **idle** holder (no activity, no give
//!   in flight) not answered by a GTC within [`TrackerConfig::please_max_events`]
//!   events / [`TrackerConfig::please_max_ns`], or by [`TurnTracker::finish`]
//!   (end of capture, user abort, release). Not reported for an association
//!   that was lost (FIN/RST/provider abort) before the bound: the please dies
//!   with the connection and the recovery is judged instead.
//! * `turn-lost`: on a *recovered* association (its CN carries `recover`),
//!   the token owner by the recovery's Token Setting asks for the Turn
//!   (please-from-holder) or leaves a please unanswered: nobody acts as
//!   holder. Reported once per association; the detail says whether the lost
//!   association had a give in flight or a please outstanding (the field
//!   failure). The AC's Token Setting tells who is at fault: the `by` side.
//! * `transfer-lost` (at `finish`): a transfer never confirmed by AEA (nor
//!   discarded), whose association ended (lost without recovery, aborted,
//!   released), or an inherited transfer never resumed (AR) nor restarted
//!   (AS, matched by label, else by sender in order) on an accepted
//!   recovery. Transfers still in progress when the capture simply ends are
//!   not reported. With labels, a re-send delivered on another association
//!   of the same [`AssociationLinker`] is not lost.
//! * `transfer-duplicated`: a label delivered (AEA) twice, within one
//!   association, across recovery, or (with a linker) across associations.
//! * Procedure checks: `gtc-during-activity`, `gtc-while-pending`,
//!   `window-exceeded` (unacknowledged MIPs > windowSize),
//!   `resume-beyond-checkpoint` (AR serial > last MIA), `serial-error`,
//!   `activity-violation`, `session-violation`, `release-without-turn`,
//!   `turn-in-monologue`, `split-tokens`, `invalid-token-setting`,
//!   `recovery-by-responder`, `recovery-unlinked`, `unexpected-event`,
//!   `malformed`.
//!
//! # Cost
//!
//! `observe` allocates nothing for token and checkpoint events; it
//! allocates for anomaly details, for one [`Transfer`] record per AS/AR and
//! for labels. Anomalies are capped ([`TrackerConfig::max_anomalies`]),
//! confirmed transfers are pruned beyond [`TrackerConfig::max_kept_transfers`].
//! Everything is deterministic (no clocks, no hashing).
#![forbid(unsafe_code)]

mod event;
mod linker;
mod model;

pub use event::{
    Accept, ActivityId, CloseHow, ConnRef, Connect, Dialogue, Mode, Observed, RefOctets, Resume, Side, TurnEvent,
};
pub use linker::AssociationLinker;
pub use model::{
    Activity, Anomaly, AnomalyKind, AssocId, Closing, Delivery, Give, Inheritance, Invariant, Phase, Please, Step,
    TimelineRow, TokenOwner, Tokens, Transfer, TransferState, TurnHolder,
};

use serde::Serialize;
use std::collections::BTreeMap;

/// Token Item bits (PI 16) and their order in the Token Setting Item.
const DATA: u8 = 0x01;
const MINOR: u8 = 0x04;
const MAJOR: u8 = 0x10;
const RELEASE: u8 = 0x40;
/// The Turn.
const TURN: u8 = DATA | MINOR | MAJOR;
const ALL_TOKENS: u8 = TURN | RELEASE;
/// Index i of `owner` <-> Token Item bit `1 << 2i` <-> setting bits `2i..2i+1`.
const TOKEN_BITS: [u8; 4] = [DATA, MINOR, MAJOR, RELEASE];
const TOKEN_NAMES: [&str; 4] = ["data", "minor-sync", "major/activity", "release"];
/// RTSE's session requirements: half-duplex, minor sync, activity
/// management, exceptions (0x0249).
pub const RTSE_REQUIREMENTS: u16 = 0x0249;

/// The tokens that exist given Session User Requirements (X.225): data with
/// half-duplex, minor-sync with minor synchronize, major/activity with major
/// synchronize or activity management, release with negotiated release.
#[must_use]
pub const fn available_tokens(requirements: u16) -> u8 {
    let mut t = 0;
    if requirements & 0x0001 != 0 {
        t |= DATA;
    }
    if requirements & 0x0008 != 0 {
        t |= MINOR;
    }
    if requirements & (0x0010 | 0x0040) != 0 {
        t |= MAJOR;
    }
    if requirements & 0x0080 != 0 {
        t |= RELEASE;
    }
    t
}

/// A piece of an anomaly detail, appended as its `Display` would write
/// it but without the formatting machinery (a `format!` of a detail cost
/// some 1,000 instructions, and a large capture reports thousands; test
/// `detail_pieces_are_display`).
trait Piece {
    fn put(self, d: &mut String);
}

impl Piece for &str {
    fn put(self, d: &mut String) {
        d.push_str(self);
    }
}

impl Piece for Side {
    fn put(self, d: &mut String) {
        d.push_str(self.name());
    }
}

impl Piece for u64 {
    fn put(self, d: &mut String) {
        let mut b = [0u8; 20];
        let at = rtse_codec::capture::put_decimal(&mut b, 20, self, 1);
        for &c in &b[at..] {
            d.push(char::from(c));
        }
    }
}

impl Piece for i64 {
    fn put(self, d: &mut String) {
        if self < 0 {
            d.push('-');
        }
        self.unsigned_abs().put(d);
    }
}

impl Piece for AssocId {
    fn put(self, d: &mut String) {
        d.push('#');
        u64::from(self.0).put(d);
    }
}

impl Piece for &ActivityId {
    fn put(self, d: &mut String) {
        match self.as_number() {
            Some(n) => n.put(d),
            None => d.push_str(&event::render_octets(self.as_bytes())),
        }
    }
}

/// `{:02x}` of an octet.
struct Hex2(u8);

impl Piece for Hex2 {
    fn put(self, d: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        d.push(char::from(HEX[usize::from(self.0 >> 4)]));
        d.push(char::from(HEX[usize::from(self.0 & 15)]));
    }
}

/// Appends the pieces to the string `d`, in order.
macro_rules! put {
    ($d:expr; $($x:expr),+ $(,)?) => {{
        let d: &mut String = $d;
        $( Piece::put($x, d); )+
    }};
}

fn token_list(mask: u8) -> String {
    let mut s = String::new();
    TokenNames(mask).put(&mut s);
    s
}

/// The names of the tokens of a mask, `", "`-separated ([`token_list`]),
/// appended to a detail in place (a data-without-turn detail built a
/// string for them first: an allocation and a growth per detail).
struct TokenNames(u8);

impl Piece for TokenNames {
    fn put(self, d: &mut String) {
        let mut first = true;
        for (bit, name) in TOKEN_BITS.iter().zip(TOKEN_NAMES) {
            if self.0 & bit != 0 {
                if !first {
                    d.push_str(", ");
                }
                first = false;
                d.push_str(name);
            }
        }
    }
}

/// What an absent Token Setting Item (in both CN and AC) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbsentTokenSetting {
    /// Answer `unknown` until behaviour reveals the holder (default: the
    /// capture does not show it).
    #[default]
    Unknown,
    /// X.225's default as we remember it: all tokens on the initiator's side.
    InitiatorSide,
}

/// Tracker settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackerConfig {
    /// A please to an idle holder is unanswered after this many further
    /// events of the association (`None`, the default: no event bound).
    pub please_max_events: Option<u64>,
    /// ... or after this much observed time (`None`: no time bound;
    /// default 30 s). Either bound is checked when an event arrives, and
    /// [`TurnTracker::finish`] catches what no event revealed.
    pub please_max_ns: Option<u64>,
    /// Meaning of an absent Token Setting Item.
    pub absent_token_setting: AbsentTokenSetting,
    /// Anomalies kept (default 4096); later ones are counted in
    /// `dropped_anomalies`.
    pub max_anomalies: usize,
    /// Transfers kept before confirmed/discarded ones are pruned (default
    /// 4096; unconfirmed ones are always kept; delivered labels are kept
    /// regardless, for duplicate detection).
    pub max_kept_transfers: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            please_max_events: None,
            please_max_ns: Some(30_000_000_000),
            absent_token_setting: AbsentTokenSetting::Unknown,
            max_anomalies: 4096,
            max_kept_transfers: 4096,
        }
    }
}

/// Where the current token positions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSource {
    /// Not known.
    Unknown,
    /// The Token Setting Item of CN/AC.
    Setting,
    /// The absent-setting default ([`AbsentTokenSetting::InitiatorSide`]).
    Default,
    /// Inferred from behaviour (mid-association capture, no setting).
    Inferred,
    /// Moved by GTC/GTA or GT.
    Moved,
}

/// A side's behaviour-inferred belief about holding the Turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Belief {
    /// Nothing seen since the last token move.
    Unknown,
    /// Sent holder-only SPDUs.
    Holder,
    /// Sent PT, GTC, or receiver-only SPDUs.
    NotHolder,
}

const FLAG_DWT_INITIATOR: u8 = 1;
const FLAG_DWT_RESPONDER: u8 = 2;
const FLAG_TWO_HOLDERS: u8 = 4;

/// The Turn tracker of one association. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct TurnTracker {
    cfg: TrackerConfig,
    id: Option<AssocId>,
    phase: Phase,
    mid_association: bool,
    accepted: bool,
    gap: bool,
    /// Seq of the last gap (data of this connection not captured) and the
    /// phase when it happened: observation resumes at the next event.
    gap_at: Option<(u64, Phase)>,
    mode: Option<crate::tracker::Mode>,
    dialogue: Option<Dialogue>,
    proposed_setting: Option<u8>,
    accepted_setting: Option<u8>,
    proposed_requirements: Option<u16>,
    checkpoint_size: Option<u32>,
    window_size: Option<u32>,
    available: u8,
    owner: [Option<Side>; 4],
    source: TokenSource,
    give: Option<Give>,
    please: Option<Please>,
    idle_since: Option<(u64, u64)>,
    belief: [Belief; 2],
    epoch_flags: u8,
    activity: Option<Activity>,
    activity_seen: bool,
    transfers: Vec<Transfer>,
    prune_at: usize,
    next_transfer: u64,
    delivered: BTreeMap<String, Delivery>,
    last_delivery: Option<(u64, bool)>,
    anomalies: Vec<Anomaly>,
    dropped: u64,
    conn_ref: Option<ConnRef>,
    recover_ref: Option<ConnRef>,
    inherited: Option<Inheritance>,
    recovered_by: Option<AssocId>,
    turn_lost_reported: bool,
    holder: TurnHolder,
    last_connected_holder: Option<TurnHolder>,
    events: u64,
    now_seq: u64,
    now_time: u64,
    finished: bool,
}

impl Default for TurnTracker {
    fn default() -> Self {
        Self::new(TrackerConfig::default())
    }
}

/// Whether an event, seen first, means the capture started mid-association.
fn starts_mid_association(e: &TurnEvent) -> bool {
    !matches!(
        e,
        TurnEvent::TransportOpen
            | TurnEvent::TransportClosed { .. }
            | TurnEvent::Connect(_)
            | TurnEvent::Accept(_)
            | TurnEvent::Refuse { .. }
            | TurnEvent::Malformed { .. }
    )
}

/// The holder implied by a phase and a token state: the single definition
/// [`TurnTracker::holder`] follows (exposed so that tests and users can
/// check consistency).
#[must_use]
pub fn holder_from(phase: Phase, tokens: &Tokens) -> TurnHolder {
    match phase {
        Phase::Established | Phase::Releasing => {}
        Phase::Unobserved => return TurnHolder::Unknown,
        _ => return TurnHolder::None,
    }
    let mut who = None;
    let mut any = false;
    let mut split = false;
    for o in tokens.turn_tokens() {
        any = true;
        match o {
            TokenOwner::InTransit => return TurnHolder::InTransit,
            TokenOwner::Unknown => return TurnHolder::Unknown,
            TokenOwner::Initiator | TokenOwner::Responder => match who {
                None => who = Some(o),
                Some(w) if w != o => split = true,
                Some(_) => {}
            },
        }
    }
    match (any, split, who) {
        (true, false, Some(TokenOwner::Initiator)) => TurnHolder::Initiator,
        (true, false, Some(TokenOwner::Responder)) => TurnHolder::Responder,
        _ => TurnHolder::None,
    }
}

impl TurnTracker {
    /// A tracker with the given settings, before any event.
    #[must_use]
    pub fn new(cfg: TrackerConfig) -> Self {
        let prune_at = cfg.max_kept_transfers.max(1);
        TurnTracker {
            cfg,
            id: None,
            phase: Phase::Idle,
            mid_association: false,
            accepted: false,
            gap: false,
            gap_at: None,
            mode: None,
            dialogue: None,
            proposed_setting: None,
            accepted_setting: None,
            proposed_requirements: None,
            checkpoint_size: None,
            window_size: None,
            available: available_tokens(RTSE_REQUIREMENTS),
            owner: [None; 4],
            source: TokenSource::Unknown,
            give: None,
            please: None,
            idle_since: None,
            belief: [Belief::Unknown; 2],
            epoch_flags: 0,
            activity: None,
            activity_seen: false,
            transfers: Vec::new(),
            prune_at,
            next_transfer: 0,
            delivered: BTreeMap::new(),
            last_delivery: None,
            anomalies: Vec::new(),
            dropped: 0,
            conn_ref: None,
            recover_ref: None,
            inherited: None,
            recovered_by: None,
            turn_lost_reported: false,
            holder: TurnHolder::None,
            last_connected_holder: None,
            events: 0,
            now_seq: 0,
            now_time: 0,
            finished: false,
        }
    }

    /// Makes this tracker [`Self::new`]'s, keeping the memory of its
    /// transfer and anomaly lists (see [`AssociationLinker::recycle`]):
    /// nothing tells the two apart but the lists' capacity (test
    /// `reset_tracker_is_a_new_one`).
    pub(crate) fn reset(&mut self, cfg: TrackerConfig) {
        let mut transfers = std::mem::take(&mut self.transfers);
        transfers.clear();
        let mut anomalies = std::mem::take(&mut self.anomalies);
        anomalies.clear();
        *self = TurnTracker { transfers, anomalies, ..TurnTracker::new(cfg) };
    }

    /// Names this tracker's association (used in delivery records and
    /// details).
    pub fn set_id(&mut self, id: AssocId) {
        self.id = Some(id);
    }

    // ------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------

    /// Association id, if set.
    #[must_use]
    pub fn id(&self) -> Option<AssocId> {
        self.id
    }
    /// Holder after the last event.
    #[must_use]
    pub fn holder(&self) -> TurnHolder {
        self.holder
    }
    /// Session token ownership (`InTransit` while a GTC is unacknowledged).
    #[must_use]
    pub fn tokens_owner(&self) -> Tokens {
        let get = |i: usize| -> Option<TokenOwner> {
            let bit = *TOKEN_BITS.get(i)?;
            if self.available & bit == 0 {
                return None;
            }
            if self.give.is_some() {
                return Some(TokenOwner::InTransit);
            }
            Some(match self.owner.get(i).copied().flatten() {
                Some(Side::Initiator) => TokenOwner::Initiator,
                Some(Side::Responder) => TokenOwner::Responder,
                None => TokenOwner::Unknown,
            })
        };
        Tokens { data: get(0), minor: get(1), major: get(2), release: get(3) }
    }
    /// Where the token positions come from.
    #[must_use]
    pub fn token_source(&self) -> TokenSource {
        self.source
    }
    /// The GTC in flight (GTA not seen).
    #[must_use]
    pub fn give_in_flight(&self) -> Option<Give> {
        self.give
    }
    /// The outstanding please.
    #[must_use]
    pub fn please_outstanding(&self) -> Option<Please> {
        self.please
    }
    /// The open activity.
    #[must_use]
    pub fn activity(&self) -> Option<&Activity> {
        self.activity.as_ref()
    }
    /// Transfers (oldest first; confirmed ones may be pruned).
    #[must_use]
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }
    /// Labels delivered (AEA seen), with where.
    #[must_use]
    pub fn delivered(&self) -> &BTreeMap<String, Delivery> {
        &self.delivered
    }
    /// Anomalies so far.
    #[must_use]
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }
    /// Takes the anomalies so far, leaving none (a report of a tracker
    /// that is done with).
    pub fn take_anomalies(&mut self) -> Vec<Anomaly> {
        std::mem::take(&mut self.anomalies)
    }
    /// Anomalies not kept because of [`TrackerConfig::max_anomalies`].
    #[must_use]
    pub fn dropped_anomalies(&self) -> u64 {
        self.dropped
    }
    /// Phase.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// A side's behaviour-inferred belief since the last token move.
    #[must_use]
    pub fn belief(&self, side: Side) -> Belief {
        self.belief.get(side.index()).copied().unwrap_or(Belief::Unknown)
    }
    /// The capture started mid-association.
    #[must_use]
    pub fn mid_association(&self) -> bool {
        self.mid_association
    }
    /// RTSE mode, when the CN showed it.
    #[must_use]
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }
    /// Dialogue mode, when the CN showed it.
    #[must_use]
    pub fn dialogue(&self) -> Option<Dialogue> {
        self.dialogue
    }
    /// Negotiated checkpointSize (AC), when known.
    #[must_use]
    pub fn checkpoint_size(&self) -> Option<u32> {
        self.checkpoint_size
    }
    /// Negotiated windowSize (AC), when known.
    #[must_use]
    pub fn window_size(&self) -> Option<u32> {
        self.window_size
    }
    /// The Token Setting Item the AC carried.
    #[must_use]
    pub fn accepted_token_setting(&self) -> Option<u8> {
        self.accepted_setting
    }
    /// This connection's Connection Identifier (from its CN).
    #[must_use]
    pub fn conn_ref(&self) -> Option<&ConnRef> {
        self.conn_ref.as_ref()
    }
    /// Takes the Connection Identifier (for a linker retiring the
    /// tracker: see [`AssociationLinker::retire`]).
    pub(crate) fn take_conn_ref(&mut self) -> Option<ConnRef> {
        self.conn_ref.take()
    }
    /// The lost connection this one's CN asks to recover.
    #[must_use]
    pub fn recover_ref(&self) -> Option<&ConnRef> {
        self.recover_ref.as_ref()
    }
    /// Is this a recovery (CN with `recover`, or state inherited)?
    #[must_use]
    pub fn is_recovery(&self) -> bool {
        self.recover_ref.is_some() || self.inherited.is_some()
    }
    /// What was inherited from the lost association (pending transfers and
    /// delivered labels moved into this tracker's own lists).
    #[must_use]
    pub fn inherited(&self) -> Option<&Inheritance> {
        self.inherited.as_ref()
    }
    /// The association that recovered this one.
    #[must_use]
    pub fn recovered_by(&self) -> Option<AssocId> {
        self.recovered_by
    }
    /// The last delivery (AEA) made by the last event: transfer number and
    /// whether it was already reported as a duplicate.
    #[must_use]
    pub fn last_delivery(&self) -> Option<(&Transfer, bool)> {
        let (no, dup) = self.last_delivery?;
        Some((self.transfer(no)?, dup))
    }
    /// Events observed.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The first anomaly that breaks `inv`, if any.
    pub fn check(&self, inv: Invariant) -> Result<(), &Anomaly> {
        let kinds = inv.kinds();
        match self.anomalies.iter().find(|a| kinds.contains(&a.kind)) {
            Some(a) => Err(a),
            None => Ok(()),
        }
    }
    /// Never two holders.
    pub fn check_one_holder(&self) -> Result<(), &Anomaly> {
        self.check(Invariant::OneHolder)
    }
    /// Only the token owner sends holder-only SPDUs; only a non-owner asks.
    pub fn check_only_holder_sends(&self) -> Result<(), &Anomaly> {
        self.check(Invariant::OnlyHolderSends)
    }
    /// After recovery the Token Setting's holder acts as holder.
    pub fn check_holder_after_recovery(&self) -> Result<(), &Anomaly> {
        self.check(Invariant::HolderAfterRecovery)
    }
    /// No transfer lost or duplicated.
    pub fn check_exactly_once(&self) -> Result<(), &Anomaly> {
        self.check(Invariant::ExactlyOnce)
    }
    /// Every please to an idle holder answered.
    pub fn check_please_answered(&self) -> Result<(), &Anomaly> {
        self.check(Invariant::PleaseAnswered)
    }

    /// The timeline row for an event just observed.
    #[must_use]
    pub fn row(&self, ev: &Observed, step: &Step) -> TimelineRow {
        TimelineRow {
            assoc: self.id,
            seq: ev.seq,
            time_ns: ev.time_ns,
            from: ev.from,
            event: ev.event.name(),
            turn: step.turn,
            anomalies: self.anomalies.get(step.anomalies.clone()).unwrap_or(&[]).iter().map(|a| a.kind).collect(),
        }
    }

    // ------------------------------------------------------------------
    // Recovery hand-over
    // ------------------------------------------------------------------

    /// What this association leaves to one that recovers it (a snapshot;
    /// see [`Self::mark_recovered_by`]).
    #[must_use]
    pub fn inheritance(&self) -> Inheritance {
        let mut pending = Vec::new();
        for t in &self.transfers {
            if t.state.unconfirmed() && t.continued_by.is_none() {
                let mut t = t.clone();
                if let Some(a) = self.activity.as_ref().filter(|a| a.transfer == t.no) {
                    t.last_acked = a.last_acked;
                    t.activity = a.id;
                }
                pending.push(t);
            }
        }
        Inheritance {
            from: self.id,
            conn_ref: self.conn_ref.clone(),
            holder_at_loss: self.last_connected_holder,
            give_in_flight: self.give,
            please: self.please,
            activity: self.activity,
            pending,
            delivered: self.delivered.clone(),
        }
    }

    /// The association `by` recovered this one (its AC was seen): the
    /// unconfirmed transfers are now its business. If this one still looked
    /// connected (the capture missed the loss), it is now lost.
    pub fn mark_recovered_by(&mut self, by: AssocId) {
        self.recovered_by = Some(by);
        if matches!(self.phase, Phase::Established | Phase::Releasing | Phase::Connecting) {
            self.phase = Phase::Lost;
            self.holder = TurnHolder::None;
        }
        for t in &mut self.transfers {
            if t.state.unconfirmed() && t.continued_by.is_none() {
                t.state = TransferState::HandedOver;
            }
        }
        self.idle_since = None;
    }

    /// Takes over what a lost association knew. Call before (or at) the
    /// recovery CN. Pending transfers become [`TransferState::Pending`]
    /// records of this tracker; delivered labels are merged.
    pub fn inherit(&mut self, mut inh: Inheritance) {
        for p in std::mem::take(&mut inh.pending) {
            let no = self.next_transfer;
            self.next_transfer = self.next_transfer.saturating_add(1);
            self.transfers.push(Transfer {
                no,
                state: TransferState::Pending,
                inherited_from: inh.from,
                continues: None,
                continued_by: None,
                guessed_link: false,
                seq: self.now_seq,
                time_ns: self.now_time,
                confirmed_seq: None,
                delivered_elsewhere: false,
                ..p
            });
        }
        for (k, v) in std::mem::take(&mut inh.delivered) {
            self.delivered.entry(k).or_insert(v);
        }
        self.inherited = Some(inh);
    }

    /// Records an anomaly found outside `observe` (by a linker).
    pub fn push_anomaly(&mut self, kind: AnomalyKind, by: Option<Side>, detail: String) {
        self.anomaly(kind, by, detail);
    }

    pub(crate) fn set_delivered_elsewhere(&mut self, f: impl Fn(&str) -> bool) {
        for t in &mut self.transfers {
            if t.state.unconfirmed() {
                if let Some(l) = &t.label {
                    if f(l) {
                        t.delivered_elsewhere = true;
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // Observation
    // ------------------------------------------------------------------

    /// Feeds one event; returns the holder after it and the anomalies it
    /// raised.
    pub fn observe(&mut self, ev: &Observed) -> Step {
        let start = self.anomalies.len();
        self.events = self.events.saturating_add(1);
        self.now_seq = ev.seq;
        self.now_time = ev.time_ns;
        self.last_delivery = None;
        if self.phase == Phase::Idle && starts_mid_association(&ev.event) {
            self.phase = Phase::Established;
            self.mid_association = true;
        }
        if self.phase == Phase::Unobserved && !matches!(ev.event, TurnEvent::TransportClosed { .. }) {
            if let Some((_, before)) = self.gap_at {
                self.resume_after_gap(before, &ev.event);
            }
        }
        let x = ev.from;
        if matches!(ev.event, TurnEvent::TransportClosed { .. }) {
            // A please already past its time bound when the connection
            // closes was unanswered while it was up: judge it at the close
            // time, before the loss ends the clock (a live observer sees no
            // event in between).
            self.update_please_clock();
        }
        match &ev.event {
            TurnEvent::TransportOpen => self.on_transport_open(x),
            TurnEvent::TransportClosed { how } => self.on_transport_closed(*how),
            TurnEvent::Connect(c) => self.on_connect(x, c),
            TurnEvent::Accept(a) => self.on_accept(x, a),
            TurnEvent::Refuse { recovery_refused, .. } => self.on_refuse(x, *recovery_refused),
            TurnEvent::PleaseTokens { tokens, priority } => {
                self.on_please(x, *tokens, priority.unwrap_or(0));
            }
            TurnEvent::GiveTokens { tokens } => self.on_give_tokens(x, *tokens),
            TurnEvent::GiveControl => self.on_give_control(x),
            TurnEvent::GiveControlAck => self.on_give_control_ack(x),
            TurnEvent::ActivityStart { id } => self.on_activity_start(x, *id),
            TurnEvent::ActivityResume(r) => self.on_activity_resume(x, r),
            TurnEvent::Data { octets } => self.on_data(x, *octets),
            TurnEvent::MinorSync { serial, confirm_required } => {
                self.on_minor_sync(x, *serial, *confirm_required);
            }
            TurnEvent::MinorSyncAck { serial } => self.on_minor_sync_ack(x, *serial),
            TurnEvent::ActivityEnd { serial } => self.on_activity_end(x, *serial),
            TurnEvent::ActivityEndAck { serial } => self.on_activity_end_ack(x, *serial),
            TurnEvent::ActivityInterrupt { .. } => self.on_activity_close(x, Closing::Interrupt),
            TurnEvent::ActivityDiscard { .. } => self.on_activity_close(x, Closing::Discard),
            TurnEvent::ActivityInterruptAck => self.on_activity_close_ack(x, Closing::Interrupt),
            TurnEvent::ActivityDiscardAck => self.on_activity_close_ack(x, Closing::Discard),
            TurnEvent::ExceptionReport { .. } => self.on_exception_report(x),
            TurnEvent::TransferLabel { label } => self.on_label(x, label),
            TurnEvent::Release => self.on_release(x),
            TurnEvent::Disconnect => self.on_disconnect(x),
            TurnEvent::NotFinished => self.on_not_finished(x),
            TurnEvent::Abort { user, .. } => self.on_abort(*user),
            TurnEvent::AbortAccept | TurnEvent::Other { .. } => {}
            TurnEvent::Malformed { detail } => {
                self.anomaly(AnomalyKind::Malformed, Some(x), detail.clone());
            }
        }
        self.update_please_clock();
        self.holder = holder_from(self.phase, &self.tokens_owner());
        if self.phase.connected() {
            self.last_connected_holder = Some(self.holder);
        }
        Step { turn: self.holder, anomalies: start..self.anomalies.len() }
    }

    /// Time passed to `time_ns` without an event (the clock of a live
    /// observer such as `rtse proxy`): a please to an idle holder past
    /// [`TrackerConfig::please_max_ns`] is judged now rather than at the
    /// next event. Returns the indices into [`Self::anomalies`] it raised.
    pub fn advance(&mut self, time_ns: u64) -> std::ops::Range<usize> {
        let start = self.anomalies.len();
        if time_ns > self.now_time && self.phase.connected() {
            self.now_time = time_ns;
            self.update_please_clock();
        }
        start..self.anomalies.len()
    }

    /// End of observation (end of capture or of the run): reports what can
    /// only be judged at the end (please-unanswered, turn-lost,
    /// transfer-lost). Idempotent; events after it are still accepted.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let ended_by_loss = self.phase == Phase::Lost || (self.phase == Phase::Unobserved && self.gap);
        if !ended_by_loss && self.recovered_by.is_none() && self.idle_since.is_some() {
            if let Some(p) = self.please.filter(|p| !p.reported) {
                self.please_unanswered(p, "by the end of the association");
            }
        }
        let ended =
            matches!(self.phase, Phase::Lost | Phase::Aborted | Phase::Released | Phase::Closed | Phase::Refused)
                && self.recovered_by.is_none();
        let mut lost: Vec<(Side, String)> = Vec::new();
        for t in &self.transfers {
            if !t.state.unconfirmed() || t.continued_by.is_some() || t.delivered_elsewhere {
                continue;
            }
            // Started before data went missing: its AEA may be in the gap.
            if t.state != TransferState::Pending && self.gap_at.is_some_and(|(g, _)| t.seq <= g) {
                continue;
            }
            // Each detail is written into one string, and only when it is
            // reported (a format! per part cost as much as the judging).
            let mut d = String::with_capacity(160);
            match &t.label {
                Some(l) => put!(&mut d; "transfer ", t.no, " (", &**l, ", activity ", &t.activity, ") from ", t.sender),
                None => put!(&mut d; "transfer ", t.no, " (activity ", &t.activity, ") from ", t.sender),
            }
            if t.state == TransferState::Pending {
                if self.accepted && !self.gap {
                    d.push_str(", unconfirmed on the lost association");
                    if let Some(a) = t.inherited_from {
                        put!(&mut d; " ", a);
                    }
                    d.push_str(", was neither resumed (AR) nor restarted (AS) after recovery");
                    lost.push((t.sender, d));
                }
            } else if ended {
                put!(&mut d; " started at ", t.seq, " was never confirmed (no AEA) and the association ended (",
                    phase_name(self.phase), ") without recovery");
                lost.push((t.sender, d));
            }
        }
        for (side, d) in lost {
            self.anomaly(AnomalyKind::TransferLost, Some(side), d);
        }
    }

    // ------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------

    fn anomaly(&mut self, kind: AnomalyKind, by: Option<Side>, detail: String) {
        if self.anomalies.len() >= self.cfg.max_anomalies {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.anomalies.push(Anomaly { kind, seq: self.now_seq, time_ns: self.now_time, by, detail });
    }

    fn unexpected(&mut self, x: Side, what: &str) {
        let phase = phase_name(self.phase);
        self.anomaly(AnomalyKind::UnexpectedEvent, Some(x), format!("{what} from {x} in phase {phase}"));
    }

    fn require_connected(&mut self, x: Side, what: &str) -> bool {
        if self.phase.connected() {
            true
        } else {
            self.unexpected(x, what);
            false
        }
    }

    fn set_belief(&mut self, side: Side, b: Belief) {
        if let Some(slot) = self.belief.get_mut(side.index()) {
            *slot = b;
        }
    }

    fn new_epoch(&mut self) {
        self.epoch_flags = 0;
    }

    /// Owner of the whole Turn, if one side owns every available Turn token
    /// and nothing is in transit.
    fn turn_owner(&self) -> Option<Side> {
        if self.give.is_some() {
            return None;
        }
        let mut who = None;
        for (i, bit) in TOKEN_BITS.iter().enumerate().take(3) {
            if self.available & bit == 0 {
                continue;
            }
            let o = self.owner.get(i).copied().flatten()?;
            match who {
                None => who = Some(o),
                Some(w) if w != o => return None,
                Some(_) => {}
            }
        }
        who
    }

    /// Every unknown available token is inferred to be `side`'s.
    fn infer_unknown(&mut self, side: Side) {
        let mut inferred = false;
        for (i, bit) in TOKEN_BITS.iter().enumerate() {
            if self.available & bit != 0 {
                if let Some(slot) = self.owner.get_mut(i) {
                    if slot.is_none() {
                        *slot = Some(side);
                        inferred = true;
                    }
                }
            }
        }
        if inferred {
            self.source = TokenSource::Inferred;
        }
    }

    /// Tokens among `need` (available ones) that `side` does not own.
    fn missing(&self, side: Side, need: u8) -> u8 {
        let mut m = 0;
        for (i, bit) in TOKEN_BITS.iter().enumerate() {
            if need & self.available & bit != 0 && self.owner.get(i).copied().flatten() != Some(side) {
                m |= bit;
            }
        }
        m
    }

    fn recovery_note(&self) -> &'static str {
        if self.is_recovery() {
            " (recovered association: the Turn comes from the recovery's Token Setting only)"
        } else {
            ""
        }
    }

    /// `x` sends a holder-only SPDU needing `need` tokens.
    fn holder_only(&mut self, x: Side, need: u8, what: &str) {
        if let Some(g) = self.give {
            if g.from == x {
                self.data_without_turn(x, || {
                    format!("{what} from {x} after it gave the Turn away (GTC at {}, GTA not seen)", g.seq)
                });
                self.behaves_holder(x);
                return;
            }
            self.anomaly(
                AnomalyKind::SessionViolation,
                Some(x),
                format!("{what} from {x} before its SPM acknowledged the GTC at {} (no GTA)", g.seq),
            );
            self.complete_give(x);
        }
        self.infer_unknown(x);
        let missing = self.missing(x, need);
        if missing != 0 {
            let note = self.recovery_note();
            self.data_without_turn(x, || {
                let mut d = String::with_capacity(160);
                put!(&mut d; what, " from ", x, ", which does not own the ", TokenNames(missing), " token(s)", note);
                d
            });
        }
        self.behaves_holder(x);
    }

    /// Flags data without the Turn once per epoch and side; `detail` is
    /// only built then (most holder-only SPDUs of a flawed association
    /// repeat an anomaly already flagged, and formatting it was wasted).
    fn data_without_turn(&mut self, x: Side, detail: impl FnOnce() -> String) {
        let flag = match x {
            Side::Initiator => FLAG_DWT_INITIATOR,
            Side::Responder => FLAG_DWT_RESPONDER,
        };
        if self.epoch_flags & flag == 0 {
            self.epoch_flags |= flag;
            self.anomaly(AnomalyKind::DataWithoutTurn, Some(x), detail());
        }
    }

    fn behaves_holder(&mut self, x: Side) {
        if self.belief(x.peer()) == Belief::Holder && self.epoch_flags & FLAG_TWO_HOLDERS == 0 {
            self.epoch_flags |= FLAG_TWO_HOLDERS;
            let peer = x.peer();
            let mut d = String::with_capacity(80);
            put!(&mut d; x, " and ", peer, " both behave as Turn holder with no token move in between");
            self.anomaly(AnomalyKind::TwoHolders, Some(x), d);
        }
        self.set_belief(x, Belief::Holder);
    }

    /// The GTC in flight reached `to` (GTA seen, or `to` acted as holder).
    fn complete_give(&mut self, to: Side) {
        self.give = None;
        for (i, bit) in TOKEN_BITS.iter().enumerate() {
            if self.available & bit != 0 {
                if let Some(slot) = self.owner.get_mut(i) {
                    *slot = Some(to);
                }
            }
        }
        self.source = TokenSource::Moved;
        self.new_epoch();
        self.set_belief(to.peer(), Belief::NotHolder);
        self.set_belief(to, Belief::Unknown);
        if self.please.is_some_and(|p| p.from == to) {
            self.please = None;
        }
    }

    fn turn_lost(&mut self, by: Side, what: String) {
        if self.turn_lost_reported {
            return;
        }
        self.turn_lost_reported = true;
        // One string written in place (a format! per part cost four
        // allocations per anomaly).
        let mut d = String::with_capacity(160);
        match self.accepted_setting.or(self.proposed_setting) {
            Some(ts) => {
                put!(&mut d; "after recovery (Token Setting ", Hex2(ts), ") nobody acts as Turn holder: ", &*what)
            }
            None => put!(&mut d; "after recovery (no visible Token Setting) nobody acts as Turn holder: ", &*what),
        }
        if let Some(inh) = &self.inherited {
            d.push_str(if inh.give_in_flight.is_some() || inh.please.is_some() { "; " } else { "; recovers " });
            match inh.from {
                Some(a) => put!(&mut d; "lost association ", a),
                None => d.push_str("the lost association"),
            }
            if let Some(g) = inh.give_in_flight {
                put!(&mut d; " was lost with a GTC from ", g.from, " in flight (seq ", g.seq, ", no GTA)");
            } else if let Some(p) = inh.please {
                put!(&mut d; " was lost with a please from ", p.from, " outstanding (seq ", p.seq, ")");
            }
        }
        self.anomaly(AnomalyKind::TurnLost, Some(by), d);
    }

    fn please_unanswered(&mut self, p: Please, when: &str) {
        if let Some(slot) = self.please.as_mut() {
            slot.reported = true;
        }
        let holder = p.from.peer();
        let mut d = String::with_capacity(128);
        put!(&mut d; "please (PT at ", p.seq, ", priority ", p.priority, ") from ", p.from, " to the idle holder ",
            holder, " not answered by GTC ", when);
        self.anomaly(AnomalyKind::PleaseUnanswered, Some(holder), d);
        if self.is_recovery() {
            let mut what = String::with_capacity(64);
            put!(&mut what; holder, " owns the Turn but ignores the please from ", p.from);
            self.turn_lost(holder, what);
        }
    }

    fn update_please_clock(&mut self) {
        let idle = match self.please {
            Some(p) if !p.reported && self.give.is_none() && self.activity.is_none() => {
                self.turn_owner() == Some(p.from.peer())
            }
            _ => false,
        };
        if !idle {
            self.idle_since = None;
            return;
        }
        let (ev0, t0) = *self.idle_since.get_or_insert((self.events, self.now_time));
        if !self.phase.connected() {
            return;
        }
        let over_events = self.cfg.please_max_events.is_some_and(|m| self.events.saturating_sub(ev0) > m);
        let over_time = self.cfg.please_max_ns.is_some_and(|m| self.now_time.saturating_sub(t0) > m);
        if over_events || over_time {
            if let Some(p) = self.please {
                let when = if over_time { "within the time bound" } else { "within the event bound" };
                self.please_unanswered(p, when);
            }
        }
    }

    fn transfer(&self, no: u64) -> Option<&Transfer> {
        let i = self.transfers.binary_search_by_key(&no, |t| t.no).ok()?;
        self.transfers.get(i)
    }

    fn transfer_mut(&mut self, no: u64) -> Option<&mut Transfer> {
        let i = self.transfers.binary_search_by_key(&no, |t| t.no).ok()?;
        self.transfers.get_mut(i)
    }

    fn new_transfer(&mut self, sender: Side, activity: ActivityId, resumed: bool) -> u64 {
        if self.transfers.len() >= self.prune_at {
            self.transfers.retain(|t| {
                t.state.unconfirmed()
                    || t.continues.is_some()
                    || t.continued_by.is_some() && t.state != TransferState::Confirmed
            });
            self.prune_at = self.cfg.max_kept_transfers.max(self.transfers.len().saturating_mul(2)).max(1);
        }
        let no = self.next_transfer;
        self.next_transfer = self.next_transfer.saturating_add(1);
        self.transfers.push(Transfer {
            no,
            sender,
            activity,
            label: None,
            state: TransferState::InProgress,
            seq: self.now_seq,
            time_ns: self.now_time,
            confirmed_seq: None,
            resumed,
            inherited_from: None,
            continues: None,
            continued_by: None,
            guessed_link: false,
            last_acked: 0,
            delivered_elsewhere: false,
        });
        no
    }

    /// Links `later` as the continuation of `earlier`.
    fn link(&mut self, earlier: u64, later: u64, guessed: bool) {
        let (label, inherited) = match self.transfer_mut(earlier) {
            Some(e) => {
                e.continued_by = Some(later);
                (e.label.clone(), e.inherited_from)
            }
            None => return,
        };
        if let Some(l) = self.transfer_mut(later) {
            l.continues = Some(earlier);
            l.guessed_link = guessed;
            if l.label.is_none() && !guessed {
                l.label = label;
            }
            if l.inherited_from.is_none() {
                l.inherited_from = inherited;
            }
        }
    }

    fn unlink(&mut self, later: u64) {
        let Some(earlier) = self.transfer_mut(later).and_then(|l| {
            l.guessed_link = false;
            l.inherited_from = None;
            l.continues.take()
        }) else {
            return;
        };
        if let Some(e) = self.transfer_mut(earlier) {
            e.continued_by = None;
        }
    }

    /// A pending inherited transfer from `sender` that a restart could
    /// continue: same label if given, else the oldest unlabelled-or-any one.
    fn pending_for(&self, sender: Side, label: Option<&str>) -> Option<u64> {
        self.transfers
            .iter()
            .find(|t| {
                t.state == TransferState::Pending
                    && t.continued_by.is_none()
                    && t.sender == sender
                    && match label {
                        Some(l) => t.label.as_deref() == Some(l),
                        None => true,
                    }
            })
            .map(|t| t.no)
    }

    fn deliver(&mut self, no: u64, receiver: Side) {
        let seq = self.now_seq;
        let Some(t) = self.transfer_mut(no) else {
            return;
        };
        t.state = TransferState::Confirmed;
        t.confirmed_seq = Some(seq);
        let label = t.label.clone();
        let mut dup = false;
        if let Some(l) = label {
            dup = self.note_delivery(l, receiver, no);
        }
        self.last_delivery = Some((no, dup));
    }

    /// Records a delivery of `label`; true when it was a duplicate (and
    /// reported).
    fn note_delivery(&mut self, label: String, receiver: Side, no: u64) -> bool {
        if let Some(d) = self.delivered.get(&label).copied() {
            let sender = receiver.peer();
            let across = if d.assoc.is_some() && d.assoc != self.id { " (across recovery)" } else { "" };
            let mut detail = String::with_capacity(label.len() + 96);
            put!(&mut detail; &*label, " delivered again by transfer ", no, " to ", receiver, across,
                ": first delivered (AEA) at seq ", d.seq);
            match (d.assoc, self.id) {
                (Some(a), Some(me)) if a != me => put!(&mut detail; " on association ", a),
                (Some(a), None) => put!(&mut detail; " on association ", a),
                _ => {}
            }
            self.anomaly(AnomalyKind::TransferDuplicated, Some(sender), detail);
            true
        } else {
            self.delivered.insert(label, Delivery { assoc: self.id, seq: self.now_seq, receiver });
            false
        }
    }

    // ------------------------------------------------------------------
    // Event handlers
    // ------------------------------------------------------------------

    fn on_transport_open(&mut self, x: Side) {
        if self.phase == Phase::Idle {
            self.phase = Phase::TransportUp;
        } else {
            self.unexpected(x, "a second transport connection (a recovery is a new association)");
        }
    }

    fn on_transport_closed(&mut self, how: CloseHow) {
        match how {
            CloseHow::Fin | CloseHow::Rst => match self.phase {
                Phase::Established | Phase::Releasing | Phase::Connecting => self.phase = Phase::Lost,
                Phase::Idle | Phase::TransportUp => self.phase = Phase::Closed,
                _ => {}
            },
            CloseHow::Eof | CloseHow::Gap => {
                if matches!(self.phase, Phase::Established | Phase::Releasing | Phase::Connecting | Phase::TransportUp)
                {
                    if how == CloseHow::Gap {
                        self.gap_at = Some((self.now_seq, self.phase));
                    }
                    self.phase = Phase::Unobserved;
                    self.gap = how == CloseHow::Gap;
                } else if how == CloseHow::Gap && self.phase == Phase::Unobserved {
                    if let Some((seq, _)) = &mut self.gap_at {
                        *seq = self.now_seq;
                    }
                }
            }
        }
    }

    /// The first event after a gap: observation resumes as if the capture
    /// started there. Whatever the missing octets held (a GTC, a GTA, an
    /// AEA, a whole activity) is unknown, so token positions, the give in
    /// flight, the please and the open activity are forgotten and behaviour
    /// reveals them again (as for a capture that starts mid-association).
    /// A gap before the CN (or before the AC/RF) lets the connect phase
    /// continue when the next event is the CN (or the AC/RF).
    fn resume_after_gap(&mut self, before: Phase, next: &TurnEvent) {
        self.phase = match (before, next) {
            (Phase::Idle | Phase::TransportUp, TurnEvent::Connect(_)) => Phase::TransportUp,
            (Phase::Connecting, TurnEvent::Accept(_) | TurnEvent::Refuse { .. }) => Phase::Connecting,
            _ => {
                self.mid_association = true;
                self.owner = [None; 4];
                self.source = TokenSource::Unknown;
                self.give = None;
                self.please = None;
                self.idle_since = None;
                self.belief = [Belief::Unknown; 2];
                self.new_epoch();
                self.activity = None;
                self.activity_seen = false;
                if before == Phase::Releasing {
                    Phase::Releasing
                } else {
                    Phase::Established
                }
            }
        };
    }

    fn on_connect(&mut self, x: Side, c: &Connect) {
        if x != Side::Initiator {
            self.unexpected(x, "CN (the CN sender is the initiator by definition; mapping error?)");
        }
        if !matches!(self.phase, Phase::Idle | Phase::TransportUp) {
            self.unexpected(x, "CN on an association that already has one");
            return;
        }
        self.phase = Phase::Connecting;
        self.mode = c.mode;
        self.dialogue = c.dialogue;
        self.proposed_setting = c.token_setting;
        self.proposed_requirements = c.session_requirements;
        self.conn_ref.clone_from(&c.conn_ref);
        self.recover_ref.clone_from(&c.recover);
        if let Some(r) = c.session_requirements {
            self.available = available_tokens(r);
        }
        if let Some(ts) = c.token_setting {
            for (i, name) in TOKEN_NAMES.iter().enumerate() {
                let bit = TOKEN_BITS.get(i).copied().unwrap_or(0);
                if self.available & bit != 0 && (ts >> (2 * i)) & 3 == 3 {
                    self.anomaly(
                        AnomalyKind::InvalidTokenSetting,
                        Some(x),
                        format!("CN Token Setting {ts:02x}: reserved value 11 for the {name} token"),
                    );
                }
            }
            if self.dialogue == Some(Dialogue::Monologue) && self.setting_gives_responder(ts) {
                self.anomaly(
                    AnomalyKind::TurnInMonologue,
                    Some(x),
                    format!("CN Token Setting {ts:02x} offers Turn tokens to the responder in monologue"),
                );
            }
        }
    }

    fn setting_gives_responder(&self, ts: u8) -> bool {
        (0..3).any(|i| TOKEN_BITS.get(i).is_some_and(|b| self.available & b != 0) && (ts >> (2 * i)) & 3 != 0)
    }

    fn on_accept(&mut self, x: Side, a: &Accept) {
        if x != Side::Responder {
            self.unexpected(x, "AC (the AC sender is the responder by definition; mapping error?)");
        }
        if !matches!(self.phase, Phase::Idle | Phase::TransportUp | Phase::Connecting) {
            self.unexpected(x, "AC");
            return;
        }
        if let Some(r) = a.session_requirements.or(self.proposed_requirements) {
            self.available = available_tokens(r);
        }
        self.accepted_setting = a.token_setting;
        self.owner = [None; 4];
        let mut source = TokenSource::Setting;
        let mut unresolved = false;
        for (i, name) in TOKEN_NAMES.iter().enumerate() {
            let bit = TOKEN_BITS.get(i).copied().unwrap_or(0);
            if self.available & bit == 0 {
                continue;
            }
            let cn = self.proposed_setting.map(|ts| (ts >> (2 * i)) & 3);
            let ac = a.token_setting.map(|ts| (ts >> (2 * i)) & 3);
            let owner = match (cn, ac) {
                (_, Some(0)) => Some(Side::Initiator),
                (_, Some(1)) => Some(Side::Responder),
                (_, Some(v)) => {
                    let what = if v == 2 {
                        "left at \"called SS-user's choice\" (AC must resolve it)"
                    } else {
                        "reserved value 11"
                    };
                    self.anomaly(
                        AnomalyKind::InvalidTokenSetting,
                        Some(x),
                        format!("AC Token Setting {:02x}: {name} token {what}", a.token_setting.unwrap_or(0)),
                    );
                    None
                }
                (Some(0), None) => Some(Side::Initiator),
                (Some(1), None) => Some(Side::Responder),
                (Some(_), None) => {
                    unresolved = true;
                    None
                }
                (None, None) => match self.cfg.absent_token_setting {
                    AbsentTokenSetting::Unknown => None,
                    AbsentTokenSetting::InitiatorSide => {
                        source = TokenSource::Default;
                        Some(Side::Initiator)
                    }
                },
            };
            if let (Some(c @ 0..=1), Some(v @ 0..=1)) = (cn, ac) {
                if c != v {
                    self.anomaly(
                        AnomalyKind::InvalidTokenSetting,
                        Some(x),
                        format!(
                            "AC Token Setting {:02x} changes the {name} token the CN ({:02x}) fixed; the AC value rules",
                            a.token_setting.unwrap_or(0),
                            self.proposed_setting.unwrap_or(0)
                        ),
                    );
                }
            }
            if let Some(slot) = self.owner.get_mut(i) {
                *slot = owner;
            }
        }
        if unresolved {
            self.anomaly(
                AnomalyKind::InvalidTokenSetting,
                Some(x),
                format!(
                    "CN Token Setting {:02x} leaves tokens to the called SS-user's choice and the AC carries no Token Setting to resolve it",
                    self.proposed_setting.unwrap_or(0)
                ),
            );
        }
        self.source = if self.owner.iter().zip(TOKEN_BITS).any(|(o, b)| o.is_some() && self.available & b != 0) {
            source
        } else {
            TokenSource::Unknown
        };
        self.checkpoint_size = a.checkpoint_size;
        self.window_size = a.window_size;
        if self.recover_ref.is_some() && !a.recover {
            self.unexpected(x, "AC without recover answering a recovery CN");
        } else if a.recover && self.phase == Phase::Connecting && self.recover_ref.is_none() {
            self.unexpected(x, "AC with recover answering an ordinary CN");
        }
        self.phase = Phase::Established;
        self.accepted = true;
        self.give = None;
        self.please = None;
        self.belief = [Belief::Unknown; 2];
        self.new_epoch();
        if self.owner.iter().take(3).zip(TOKEN_BITS).any(|(o, b)| self.available & b != 0 && o.is_some())
            && self.turn_owner().is_none()
            && self.owner.iter().take(3).zip(TOKEN_BITS).all(|(o, b)| self.available & b == 0 || o.is_some())
        {
            self.anomaly(
                AnomalyKind::SplitTokens,
                Some(x),
                format!(
                    "Token Setting {:02x} splits the Turn tokens between the sides (RTSE assigns all or none)",
                    a.token_setting.or(self.proposed_setting).unwrap_or(0)
                ),
            );
        }
        if self.dialogue == Some(Dialogue::Monologue) && self.turn_owner() == Some(Side::Responder) {
            self.anomaly(AnomalyKind::TurnInMonologue, Some(x), "the responder holds the Turn in monologue".to_owned());
        }
    }

    fn on_refuse(&mut self, x: Side, _recovery_refused: bool) {
        if !matches!(self.phase, Phase::Idle | Phase::TransportUp | Phase::Connecting) {
            self.unexpected(x, "RF");
            return;
        }
        self.phase = Phase::Refused;
        // A refused recovery takes nothing over: the pending transfers stay
        // the lost association's (a later attempt may still recover it).
        self.transfers.retain(|t| t.state != TransferState::Pending);
    }

    fn on_please(&mut self, x: Side, tokens: u8, priority: i64) {
        if !self.require_connected(x, "PT") {
            return;
        }
        if self.dialogue == Some(Dialogue::Monologue) {
            self.anomaly(AnomalyKind::TurnInMonologue, Some(x), format!("PT from {x} in monologue"));
        }
        let asked = tokens & self.available;
        if tokens & !self.available & ALL_TOKENS != 0 || asked == 0 {
            self.anomaly(
                AnomalyKind::SessionViolation,
                Some(x),
                format!("PT from {x} asks for tokens {tokens:02x}, available are {:02x}", self.available),
            );
        }
        self.set_belief(x, Belief::NotHolder);
        if self.give.is_none() {
            self.infer_unknown(x.peer());
            let owned = asked & !self.missing(x, asked);
            if owned != 0 {
                let note = self.recovery_note();
                self.anomaly(
                    AnomalyKind::PleaseFromHolder,
                    Some(x),
                    format!("PT from {x}, which owns the {} token(s) it asks for{note}", token_list(owned)),
                );
                if self.is_recovery() {
                    self.turn_lost(x, format!("{x} owns the Turn but asks for it (PT)"));
                }
            }
        }
        // A GTC in flight from x: x gave and asks back; towards x: crossing,
        // answered when GTA arrives. Either way the please stands.
        match self.please.as_mut() {
            Some(p) if p.from == x => {
                p.priority = p.priority.min(priority);
                p.tokens |= tokens;
            }
            _ => {
                self.please = Some(Please {
                    from: x,
                    priority,
                    tokens,
                    seq: self.now_seq,
                    time_ns: self.now_time,
                    reported: false,
                });
                self.idle_since = None;
            }
        }
    }

    fn on_give_tokens(&mut self, x: Side, tokens: u8) {
        let given = tokens & ALL_TOKENS;
        if given == 0 {
            return; // the empty GT prefix of a category-2 SPDU
        }
        if !self.require_connected(x, "GT") {
            return;
        }
        if self.dialogue == Some(Dialogue::Monologue) {
            self.anomaly(AnomalyKind::TurnInMonologue, Some(x), format!("GT from {x} in monologue"));
        }
        if given & !self.available != 0 {
            self.anomaly(
                AnomalyKind::SessionViolation,
                Some(x),
                format!("GT from {x} gives tokens {tokens:02x}, available are {:02x}", self.available),
            );
        }
        self.holder_only(x, given, "GT");
        for (i, bit) in TOKEN_BITS.iter().enumerate() {
            if given & self.available & bit != 0 {
                if let Some(slot) = self.owner.get_mut(i) {
                    *slot = Some(x.peer());
                }
            }
        }
        self.source = TokenSource::Moved;
        self.new_epoch();
        if self.turn_owner() == Some(x.peer()) {
            self.set_belief(x, Belief::NotHolder);
            self.set_belief(x.peer(), Belief::Unknown);
            if self.please.is_some_and(|p| p.from == x.peer()) {
                self.please = None;
            }
        } else if self.turn_owner().is_none() && self.owner.iter().take(3).all(Option::is_some) {
            self.anomaly(
                AnomalyKind::SplitTokens,
                Some(x),
                format!("GT {tokens:02x} from {x} splits the Turn tokens between the sides"),
            );
        }
    }

    fn on_give_control(&mut self, x: Side) {
        if !self.require_connected(x, "GTC") {
            return;
        }
        if self.dialogue == Some(Dialogue::Monologue) {
            self.anomaly(AnomalyKind::TurnInMonologue, Some(x), format!("GTC from {x} in monologue"));
        }
        if let Some(g) = self.give {
            if g.from == x {
                self.anomaly(
                    AnomalyKind::GtcWhilePending,
                    Some(x),
                    format!("second GTC from {x} while its GTC at {} is unacknowledged", g.seq),
                );
                return;
            }
        }
        if let Some(a) = self.activity {
            self.anomaly(
                AnomalyKind::GtcDuringActivity,
                Some(x),
                format!("GTC from {x} while activity {} (sender {}) is open", a.id, a.sender),
            );
        }
        self.holder_only(x, ALL_TOKENS, "GTC");
        self.give = Some(Give { from: x, seq: self.now_seq, time_ns: self.now_time });
        self.set_belief(x, Belief::NotHolder);
        if self.please.is_some_and(|p| p.from == x.peer()) {
            // Answered (the GTA will confirm the move).
            self.please = None;
        }
    }

    fn on_give_control_ack(&mut self, x: Side) {
        if !self.require_connected(x, "GTA") {
            return;
        }
        match self.give {
            Some(g) if g.from == x.peer() => self.complete_give(x),
            Some(g) => {
                self.anomaly(
                    AnomalyKind::SessionViolation,
                    Some(x),
                    format!("GTA from {x}, which sent the GTC at {} itself", g.seq),
                );
            }
            None => {
                if self.owner.iter().zip(TOKEN_BITS).any(|(o, b)| self.available & b != 0 && o.is_none()) {
                    // Mid-capture: the GTC was before the capture began.
                    self.complete_give(x);
                    self.source = TokenSource::Inferred;
                } else {
                    self.anomaly(AnomalyKind::SessionViolation, Some(x), format!("GTA from {x} without a GTC"));
                }
            }
        }
    }

    fn on_activity_start(&mut self, x: Side, id: ActivityId) {
        if !self.require_connected(x, "AS") {
            return;
        }
        self.holder_only(x, TURN, "AS");
        if let Some(a) = self.activity {
            self.anomaly(
                AnomalyKind::ActivityViolation,
                Some(x),
                format!("AS {id} from {x} while activity {} (sender {}) is open", a.id, a.sender),
            );
        }
        let no = self.new_transfer(x, id, false);
        self.activity = Some(Activity {
            id,
            sender: x,
            last_sent: 0,
            last_acked: 0,
            end_serial: None,
            closing: None,
            octets: 0,
            transfer: no,
            partial: false,
        });
        self.activity_seen = true;
        if let Some(p) = self.pending_for(x, None) {
            // Restart after recovery; guessed until a label confirms it.
            self.link(p, no, true);
        }
    }

    fn on_activity_resume(&mut self, x: Side, r: &Resume) {
        if !self.require_connected(x, "AR") {
            return;
        }
        self.holder_only(x, TURN, "AR");
        if let Some(a) = self.activity {
            self.anomaly(
                AnomalyKind::ActivityViolation,
                Some(x),
                format!("AR from {x} while activity {} (sender {}) is open", a.id, a.sender),
            );
        }
        let inh_ref = self.inherited.as_ref().and_then(|i| i.conn_ref.clone());
        let own_ref = self.conn_ref.clone();
        let found = self
            .transfers
            .iter()
            .find(|t| {
                t.continued_by.is_none()
                    && t.sender == x
                    && t.activity == r.old_id
                    && match t.state {
                        TransferState::Pending => match (&r.old_conn, &inh_ref) {
                            (Some(q), Some(actual)) => q.matches(actual),
                            _ => true,
                        },
                        TransferState::Interrupted => match (&r.old_conn, &own_ref) {
                            (Some(q), Some(actual)) => q.matches(actual),
                            (Some(_), None) => false,
                            _ => true,
                        },
                        _ => false,
                    }
            })
            .map(|t| (t.no, t.last_acked, t.state));
        let no = self.new_transfer(x, r.new_id, true);
        match found {
            Some((old, acked, state)) => {
                if r.serial > acked {
                    self.anomaly(
                        AnomalyKind::ResumeBeyondCheckpoint,
                        Some(x),
                        format!(
                            "AR from {x} resumes activity {} at serial {} but the receiver confirmed (MIA) only up to {acked}{}",
                            r.old_id,
                            r.serial,
                            if state == TransferState::Pending { " before the loss" } else { "" }
                        ),
                    );
                }
                self.link(old, no, false);
            }
            // A resume from serial 0 quoting the lost connection, on its
            // recovery, when that connection showed no unfinished activity
            // of this sender: the AS was lost with it (the sender cannot
            // know whether it arrived), so the receiver takes it as a start.
            None if r.serial == 0
                && self.is_recovery()
                && self.pending_for(x, None).is_none()
                && match (&r.old_conn, &inh_ref) {
                    (Some(q), Some(actual)) => q.matches(actual),
                    (None, _) => true,
                    (Some(_), None) => false,
                } => {}
            None => {
                let q = r.old_conn.as_ref().map_or_else(String::new, |c| format!(" of connection {c}"));
                self.anomaly(
                    AnomalyKind::ActivityViolation,
                    Some(x),
                    format!(
                        "AR from {x} resumes activity {}{q}, which is not an interrupted or inherited unconfirmed activity (receiver should abort: unrecognizedActivity)",
                        r.old_id
                    ),
                );
            }
        }
        self.activity = Some(Activity {
            id: r.new_id,
            sender: x,
            last_sent: r.serial,
            last_acked: r.serial,
            end_serial: None,
            closing: None,
            octets: 0,
            transfer: no,
            partial: false,
        });
        self.activity_seen = true;
    }

    /// A capture that started mid-association shows an activity already
    /// open: learn it from the first transfer event.
    fn can_assume_partial(&self) -> bool {
        self.mid_association && !self.activity_seen && self.activity.is_none()
    }

    fn start_partial(&mut self, sender: Side) {
        let id = ActivityId::from_bytes(&[]).unwrap_or(ActivityId::number(0));
        let no = self.new_transfer(sender, id, false);
        self.activity = Some(Activity {
            id,
            sender,
            last_sent: 0,
            last_acked: 0,
            end_serial: None,
            closing: None,
            octets: 0,
            transfer: no,
            partial: true,
        });
        self.activity_seen = true;
    }

    /// The open activity if `x` is its sender; else an activity-violation.
    fn sender_activity(&mut self, x: Side, what: &str) -> bool {
        if self.can_assume_partial() {
            self.start_partial(x);
        }
        match self.activity {
            Some(a) if a.sender == x => true,
            Some(a) => {
                self.anomaly(
                    AnomalyKind::ActivityViolation,
                    Some(x),
                    format!("{what} from {x}, the receiver of activity {}", a.id),
                );
                false
            }
            None => {
                self.anomaly(AnomalyKind::ActivityViolation, Some(x), format!("{what} from {x} outside an activity"));
                false
            }
        }
    }

    /// The open activity if `x` is its receiver; else an activity-violation.
    fn receiver_activity(&mut self, x: Side, what: &str) -> bool {
        if self.can_assume_partial() {
            self.start_partial(x.peer());
        }
        match self.activity {
            Some(a) if a.sender == x.peer() => true,
            Some(a) => {
                self.anomaly(
                    AnomalyKind::ActivityViolation,
                    Some(x),
                    format!("{what} from {x}, the sender of activity {}", a.id),
                );
                false
            }
            None => {
                self.anomaly(AnomalyKind::ActivityViolation, Some(x), format!("{what} from {x} with no activity open"));
                false
            }
        }
    }

    fn on_data(&mut self, x: Side, octets: usize) {
        if !self.require_connected(x, "DT") {
            return;
        }
        self.holder_only(x, DATA, "DT");
        if self.sender_activity(x, "DT") {
            if let Some(a) = self.activity.as_mut() {
                a.octets = a.octets.saturating_add(octets as u64);
            }
        }
    }

    fn on_minor_sync(&mut self, x: Side, serial: u32, confirm_required: bool) {
        if !self.require_connected(x, "MIP") {
            return;
        }
        self.holder_only(x, MINOR | DATA, "MIP");
        if !self.sender_activity(x, "MIP") {
            return;
        }
        let Some(a) = self.activity else { return };
        let expected = a.last_sent.saturating_add(1);
        if serial != expected && !(a.partial && a.last_sent == 0) {
            self.anomaly(
                AnomalyKind::SerialError,
                Some(x),
                format!("MIP serial {serial} from {x}, expected {expected}"),
            );
        }
        if self.checkpoint_size == Some(0) {
            self.anomaly(
                AnomalyKind::ActivityViolation,
                Some(x),
                format!("MIP from {x} although checkpointSize 0 (no checkpointing) was accepted"),
            );
        }
        let last_sent = serial.max(a.last_sent);
        let unacked = last_sent.saturating_sub(a.last_acked);
        if let Some(a) = self.activity.as_mut() {
            a.last_sent = last_sent;
        }
        if let Some(w) = self.window_size {
            if confirm_required && unacked > w && !a.partial {
                self.anomaly(
                    AnomalyKind::WindowExceeded,
                    Some(x),
                    format!("MIP {serial} from {x}: {unacked} checkpoints unacknowledged, windowSize {w}"),
                );
            }
        }
    }

    fn on_minor_sync_ack(&mut self, x: Side, serial: u32) {
        if !self.require_connected(x, "MIA") {
            return;
        }
        self.set_belief(x, Belief::NotHolder);
        self.infer_unknown(x.peer());
        if !self.receiver_activity(x, "MIA") {
            return;
        }
        let Some(mut a) = self.activity else { return };
        if a.partial && serial > a.last_sent {
            // The MIP was before the capture.
            a.last_sent = serial;
            if let Some(act) = self.activity.as_mut() {
                act.last_sent = serial;
            }
        }
        if serial <= a.last_acked || serial > a.last_sent {
            self.anomaly(
                AnomalyKind::SerialError,
                Some(x),
                format!("MIA serial {serial} from {x}: last confirmed {}, last MIP sent {}", a.last_acked, a.last_sent),
            );
        }
        if serial > a.last_acked && serial <= a.last_sent {
            if let Some(a) = self.activity.as_mut() {
                a.last_acked = serial;
            }
            if let Some(t) = self.transfer_mut(a.transfer) {
                t.last_acked = serial;
            }
        }
    }

    fn on_activity_end(&mut self, x: Side, serial: u32) {
        if !self.require_connected(x, "AE") {
            return;
        }
        self.holder_only(x, TURN, "AE");
        if !self.sender_activity(x, "AE") {
            return;
        }
        let Some(a) = self.activity else { return };
        let expected = a.last_sent.saturating_add(1);
        if serial != expected {
            self.anomaly(
                AnomalyKind::SerialError,
                Some(x),
                format!("AE serial {serial} from {x}, expected {expected}"),
            );
        }
        if let Some(a) = self.activity.as_mut() {
            a.end_serial = Some(serial);
        }
        if let Some(t) = self.transfer_mut(a.transfer) {
            t.state = TransferState::Ended;
        }
    }

    fn on_activity_end_ack(&mut self, x: Side, serial: u32) {
        if !self.require_connected(x, "AEA") {
            return;
        }
        self.set_belief(x, Belief::NotHolder);
        self.infer_unknown(x.peer());
        if !self.receiver_activity(x, "AEA") {
            return;
        }
        let Some(a) = self.activity else { return };
        let end = match a.end_serial {
            Some(e) => Some(e),
            None if a.partial => Some(serial), // AE before the capture
            None => None,
        };
        let Some(end) = end else {
            self.anomaly(AnomalyKind::ActivityViolation, Some(x), format!("AEA from {x} without AE"));
            return;
        };
        if serial != end {
            self.anomaly(AnomalyKind::SerialError, Some(x), format!("AEA serial {serial} from {x}, AE was {end}"));
        }
        self.activity = None;
        self.deliver(a.transfer, x);
    }

    fn on_activity_close(&mut self, x: Side, how: Closing) {
        let what = match how {
            Closing::Interrupt => "AI",
            Closing::Discard => "AD",
        };
        if !self.require_connected(x, what) {
            return;
        }
        self.holder_only(x, MAJOR, what);
        if !self.sender_activity(x, what) {
            return;
        }
        if let Some(a) = self.activity.as_mut() {
            a.closing = Some(how);
        }
    }

    fn on_activity_close_ack(&mut self, x: Side, how: Closing) {
        let what = match how {
            Closing::Interrupt => "AIA",
            Closing::Discard => "ADA",
        };
        if !self.require_connected(x, what) {
            return;
        }
        self.infer_unknown(x.peer());
        if !self.receiver_activity(x, what) {
            return;
        }
        let Some(a) = self.activity else { return };
        if a.closing != Some(how) {
            self.anomaly(
                AnomalyKind::ActivityViolation,
                Some(x),
                format!("{what} from {x} without a matching {}", if how == Closing::Interrupt { "AI" } else { "AD" }),
            );
            return;
        }
        self.activity = None;
        if let Some(t) = self.transfer_mut(a.transfer) {
            t.last_acked = a.last_acked;
            t.state = match how {
                Closing::Interrupt => TransferState::Interrupted,
                Closing::Discard => TransferState::Discarded,
            };
        }
    }

    fn on_exception_report(&mut self, x: Side) {
        if !self.require_connected(x, "ED") {
            return;
        }
        self.set_belief(x, Belief::NotHolder);
        if self.available & DATA != 0 && self.give.is_none() && self.owner.first().copied().flatten() == Some(x) {
            self.anomaly(
                AnomalyKind::SessionViolation,
                Some(x),
                format!("ED from {x}, which owns the data token (only the receiver may report exceptions)"),
            );
        } else {
            self.infer_unknown(x.peer());
        }
    }

    fn on_label(&mut self, x: Side, label: &str) {
        let target = match self.activity {
            Some(a) if a.sender == x => Some(a.transfer),
            _ => self.transfers.iter().rev().find(|t| t.sender == x && t.state != TransferState::Pending).map(|t| t.no),
        };
        let Some(no) = target else {
            self.unexpected(x, "a transfer label with no transfer");
            return;
        };
        let Some(t) = self.transfer_mut(no) else {
            return;
        };
        match &t.label {
            Some(l) if l == label => return,
            Some(l) => {
                let old = l.clone();
                // On a resumed transfer (AR) the label it carries over is
                // the transfer it continues: a different one means the
                // resume re-sends a different APDU, which breaks the
                // transfer procedure (spec/turn-and-recovery.md 10: a
                // resumed activity continues the same APDU).
                let (kind, what) = if t.resumed || t.continues.is_some() {
                    (AnomalyKind::ActivityViolation, "resumed transfer")
                } else {
                    (AnomalyKind::UnexpectedEvent, "transfer")
                };
                self.anomaly(kind, Some(x), format!("label {label} for {what} {no}, which is already labelled {old}"));
                return;
            }
            None => {}
        }
        let (state, guessed, continues) = (t.state, t.guessed_link, t.continues);
        t.label = Some(label.to_owned());
        // Re-check a guessed restart link against the label.
        if guessed {
            if let Some(prev) = continues {
                let mismatch = self.transfer(prev).and_then(|p| p.label.as_deref()).is_some_and(|pl| pl != label);
                if mismatch {
                    self.unlink(no);
                } else if let Some(l) = self.transfer_mut(no) {
                    l.guessed_link = false;
                }
            }
        }
        if self.transfer(no).is_some_and(|t| t.continues.is_none() && !t.resumed) {
            if let Some(p) = self.pending_for(x, Some(label)) {
                self.link(p, no, false);
            }
        }
        if state == TransferState::Confirmed {
            let dup = self.note_delivery(label.to_owned(), x.peer(), no);
            self.last_delivery = Some((no, dup));
        }
    }

    fn on_release(&mut self, x: Side) {
        if !self.require_connected(x, "FN") {
            return;
        }
        if x != Side::Initiator {
            self.anomaly(
                AnomalyKind::ReleaseWithoutTurn,
                Some(x),
                "FN from the responder (only the association-initiator may RT-CLOSE)".to_owned(),
            );
        }
        if let Some(a) = self.activity {
            self.anomaly(
                AnomalyKind::ReleaseWithoutTurn,
                Some(x),
                format!("FN from {x} while activity {} is open", a.id),
            );
        }
        if self.give.is_some() {
            self.anomaly(
                AnomalyKind::ReleaseWithoutTurn,
                Some(x),
                format!("FN from {x} while a GTC is unacknowledged"),
            );
        } else {
            self.infer_unknown(x);
            let missing = self.missing(x, TURN);
            if missing != 0 {
                self.anomaly(
                    AnomalyKind::ReleaseWithoutTurn,
                    Some(x),
                    format!("FN from {x}, which does not own the {} token(s)", token_list(missing)),
                );
            }
            self.behaves_holder(x);
        }
        self.phase = Phase::Releasing;
    }

    fn on_disconnect(&mut self, x: Side) {
        if self.phase == Phase::Releasing {
            self.phase = Phase::Released;
        } else {
            self.unexpected(x, "DN without FN");
        }
    }

    fn on_not_finished(&mut self, x: Side) {
        if self.phase == Phase::Releasing {
            self.phase = Phase::Established;
        } else {
            self.unexpected(x, "NF without FN");
        }
    }

    fn on_abort(&mut self, user: bool) {
        if matches!(
            self.phase,
            Phase::Established | Phase::Releasing | Phase::Connecting | Phase::TransportUp | Phase::Unobserved
        ) {
            self.phase = if user { Phase::Aborted } else { Phase::Lost };
        }
    }
}

const fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Idle => "idle",
        Phase::TransportUp => "transport-up",
        Phase::Connecting => "connecting",
        Phase::Established => "established",
        Phase::Releasing => "releasing",
        Phase::Released => "released",
        Phase::Refused => "refused",
        Phase::Aborted => "aborted",
        Phase::Lost => "lost",
        Phase::Closed => "closed",
        Phase::Unobserved => "unobserved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reset tracker is a new one: the same state (`Debug` shows every
    /// field), and the same answers and anomalies on the next events,
    /// whatever the previous association left in it (transfers with
    /// labels, deliveries, anomalies, references, an open activity).
    #[test]
    fn reset_tracker_is_a_new_one() {
        let e = |seq: u64, from: Side, event: TurnEvent| Observed { seq, time_ns: seq * 1_000_000_000, from, event };
        let (i, r) = (Side::Initiator, Side::Responder);
        let act = |n: u8| TurnEvent::ActivityStart { id: ActivityId::from_bytes(&[2, 1, n]).unwrap() };
        let label = |l: &str| TurnEvent::TransferLabel { label: l.into() };
        let history = |cn_ref: &str| {
            vec![
                e(1, i, TurnEvent::TransportOpen),
                e(
                    2,
                    i,
                    TurnEvent::Connect(Box::new(Connect {
                        token_setting: Some(0),
                        conn_ref: Some(ConnRef::new("MTA", cn_ref)),
                        ..Connect::default()
                    })),
                ),
                e(3, r, TurnEvent::Accept(Accept { token_setting: Some(0), ..Accept::default() })),
                e(4, i, act(1)),
                e(5, i, label("L1")),
                e(6, i, TurnEvent::Data { octets: 10 }),
                e(7, i, TurnEvent::MinorSync { serial: 1, confirm_required: true }),
                e(8, r, TurnEvent::MinorSyncAck { serial: 1 }),
                e(9, i, TurnEvent::ActivityEnd { serial: 2 }),
                e(10, r, TurnEvent::ActivityEndAck { serial: 2 }),
                e(11, r, TurnEvent::Data { octets: 5 }),
                e(12, r, TurnEvent::PleaseTokens { tokens: TURN, priority: Some(1) }),
                e(13, i, act(2)),
                e(14, i, label("L2")),
                e(15, i, TurnEvent::TransportClosed { how: CloseHow::Rst }),
            ]
        };
        let cfg = TrackerConfig { please_max_events: Some(2), ..TrackerConfig::default() };
        let mut used = TurnTracker::new(cfg.clone());
        used.set_id(AssocId(3));
        for ev in history("250101115500Z") {
            used.observe(&ev);
        }
        used.finish();
        assert!(!used.anomalies().is_empty() && !used.transfers().is_empty() && !used.delivered().is_empty());
        used.reset(cfg.clone());
        let mut fresh = TurnTracker::new(cfg);
        assert_eq!(format!("{used:?}"), format!("{fresh:?}"));
        for t in [&mut used, &mut fresh] {
            t.set_id(AssocId(4));
        }
        for ev in history("250101120000Z") {
            assert_eq!(used.observe(&ev), fresh.observe(&ev));
            assert_eq!(format!("{used:?}"), format!("{fresh:?}"));
        }
        used.finish();
        fresh.finish();
        assert_eq!(format!("{used:?}"), format!("{fresh:?}"));
    }

    /// The anomaly-detail pieces write what `Display` writes (numbers at
    /// their limits, negative priorities, every octet in hex, activity
    /// identifiers as numbers and as octets, association numbers, sides).
    #[test]
    fn detail_pieces_are_display() {
        for n in [0u64, 1, 9, 10, 99, 100, 101, 12_345, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut d = String::new();
            put!(&mut d; n);
            assert_eq!(d, n.to_string());
        }
        for n in [0i64, 1, -1, 42, -42, 100, -100, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut d = String::new();
            put!(&mut d; n);
            assert_eq!(d, n.to_string());
        }
        for b in 0..=255u8 {
            let mut d = String::new();
            put!(&mut d; Hex2(b));
            assert_eq!(d, format!("{b:02x}"));
        }
        for a in [0u32, 7, 1000, u32::MAX] {
            let mut d = String::new();
            put!(&mut d; AssocId(a));
            assert_eq!(d, AssocId(a).to_string());
        }
        let mut ids: Vec<ActivityId> = [&b""[..], b"\x02\x01\x05", b"\x02\x02\x01\x00", b"act-1", b"\xff\x00\\"]
            .iter()
            .filter_map(|raw| ActivityId::from_bytes(raw))
            .collect();
        ids.extend([0, 1, 127, 128, 65_535, u64::MAX].map(ActivityId::number));
        assert_eq!(ids.len(), 11);
        for id in &ids {
            let mut d = String::new();
            put!(&mut d; "activity ", id, " from ", Side::Responder, ", ", Side::Initiator);
            assert_eq!(d, format!("activity {id} from {}, {}", Side::Responder, Side::Initiator));
        }
    }

    /// A token list appended in place names the tokens of every mask as
    /// the names of its bits joined with ", " (unknown bits ignored).
    #[test]
    fn token_names_in_place() {
        for mask in 0..=255u8 {
            let names: Vec<&str> =
                TOKEN_BITS.iter().zip(TOKEN_NAMES).filter(|(bit, _)| mask & **bit != 0).map(|(_, n)| n).collect();
            let mut d = String::from("x ");
            put!(&mut d; TokenNames(mask), " y");
            assert_eq!(d, format!("x {} y", names.join(", ")), "mask {mask:#04x}");
            assert_eq!(token_list(mask), names.join(", "));
        }
    }
}
