//! A deterministic simulator: two MTAs ([`ReferenceMta`], reference or any
//! [`Flaw`] on either side, either mode), a virtual clock, a seeded PRNG of
//! its own ([`SplitMix64`]; no OS randomness), and a network that carries
//! TPKTs with latency and loses the association where a [`Scenario`] says:
//! before or after the n-th PDU of a kind or the n-th PDU overall, in the
//! middle of a TPKT, at a time, or at random at a rate; by FIN, by RST, by a
//! session abort (AB) or an RTSE abort (RT-U-ABORT); told to one side or both.
//!
//! A run is a pure function of `(seed, scenario)`: [`Sim::run`] returns an
//! [`Outcome`] with the trace, the violated invariants and a replay command
//! (`rtse sim --seed 0x... --scenario NAME`).
//!
//! # Phases (TigerBeetle-style liveness)
//!
//! Faults fire only before [`Scenario::fault_phase`]; then the network is
//! healthy and every message must arrive within [`Scenario::healthy_bound`]
//! of virtual time (the run stops there). Invariants are judged on what
//! the peers actually received:
//!
//! * from the Turn tracker ([`crate::tracker::Invariant`], fed through
//!   [`crate::loopback::observe_trace`] exactly as the loopback does):
//!   `one-holder`, `only-holder-sends`, `holder-after-recovery`,
//!   `exactly-once`, `please-answered`;
//! * from the MTAs' delivery records: `exactly-once` (every submitted
//!   message delivered exactly once; the reference MTA never gives a message
//!   up, so "reported undeliverable" does not arise), `backlog-drains` (both
//!   queues empty at the end of the healthy phase), and `holder-after-recovery`
//!   (an association open at the end has exactly one holder, counting a give
//!   in flight). These read the machines' own state (`holds_turn`,
//!   `gtc_pending`): they apply no Turn rule of their own.
//!
//! # Network model (decisions)
//!
//! * One transport connection at a time, FIFO, latency plus a seeded jitter
//!   that never reorders. A `Connect` while a connection exists resets the
//!   old one (as [`crate::loopback::Loopback`] does).
//! * RST: what is in flight on the connection is lost. FIN: what is in
//!   flight is delivered, then the close. A side in `dirs` is told at once
//!   (after in-flight data, for FIN); the other learns of the loss when it
//!   next sends (a write to a dead TCP connection fails) or after
//!   [`DETECT`] (keepalive), whichever comes first.
//! * Session abort: the aborting side's session provider sends AB (release,
//!   no user data) and closes; it is itself told the transport is lost.
//! * RTSE abort: the side's RTSE user requests RT-U-ABORT.
//! * Mid-TPKT cut: the first half of the TPKT reaches the peer, then RST.
//!   The tracker never sees the partial TPKT (the receiver never decodes it);
//!   the pcapng export shows it.
#![forbid(unsafe_code)]

pub mod enumerate;
pub mod model;
pub mod pcap;
pub mod scenario;

pub use scenario::{Dirs, Fault, How, Scenario, Submit, Tamper, TamperAt, When};

use crate::flaw::Flaw;
use crate::loopback::{close_name, observe_trace, Flight, Network, Trace, TraceItem, TraceKind, HOSTS};
use crate::machine::{Action, Apdu, Indication, Input, Output, PAbortReason, PduInfo, Tick, TimerId, TransportEvent};
use crate::mta::{MtaConfig, MtaInput, ReferenceMta};
use crate::tracker::{AnomalyKind, AssocId, AssociationLinker, CloseHow, Invariant};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

/// How long a side not told of a loss takes to notice it by itself.
pub const DETECT: Tick = 5_000_000_000;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for fault
/// injection, and ours, so a seed means the same run on every platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0; 0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// `n` random octets (test and benchmark noise).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `one-holder`, `only-holder-sends`, `holder-after-recovery`,
    /// `exactly-once`, `please-answered`, `backlog-drains`, `protocol` (any
    /// other tracker anomaly: a procedure rule of the standard).
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The scenario's name (or file).
    pub scenario: String,
    /// Broken invariants (empty: all hold).
    pub violations: Vec<Violation>,
    /// Everything recorded.
    pub trace: Trace,
    /// Endpoint that opened each connection.
    pub initiators: Vec<usize>,
    /// Mid-TPKT cuts: (trace index, octets that reached the peer).
    pub cuts: Vec<(usize, usize)>,
    /// TPKTs delivered.
    pub pdus: u64,
    /// Faults that fired, as text.
    pub faults: Vec<String>,
    /// Virtual time at the end.
    pub end: Tick,
}

impl Outcome {
    /// All invariants hold.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
    /// The command that replays this run.
    #[must_use]
    pub fn replay(&self) -> String {
        format!("rtse sim --seed {:#018x} --scenario {}", self.seed, self.scenario)
    }
    /// One line per trace item: `t=1.002000 #0 A>B GTC` (` x` undelivered,
    /// ` cut@N` for a mid-TPKT cut), with the TPKT in hex when `hex`.
    #[must_use]
    pub fn transcript(&self, hex: bool) -> String {
        let cuts: BTreeMap<usize, usize> = self.cuts.iter().copied().collect();
        let mut s = String::new();
        for (i, t) in self.trace.iter().enumerate() {
            let (a, b) = (HOSTS[t.from], HOSTS[1 - t.from]);
            let secs = t.time / 1_000_000_000;
            let us = (t.time % 1_000_000_000) / 1000;
            let _ = write!(s, "t={secs}.{us:06} #{} ", t.conn);
            match &t.kind {
                TraceKind::Open => {
                    let _ = write!(s, "{a} open");
                }
                TraceKind::Pdu { bytes, info, delivered } => {
                    let _ = write!(s, "{a}>{b} {}{}", pdu_name(info), if *delivered { "" } else { " x" });
                    if let Some(n) = cuts.get(&i) {
                        let _ = write!(s, " cut@{n}");
                    }
                    if hex {
                        s.push(' ');
                        for x in bytes {
                            let _ = write!(s, "{x:02x}");
                        }
                    }
                }
                TraceKind::Closed(how) => {
                    let _ = write!(s, "{a} {}", close_name(*how));
                }
            }
            s.push('\n');
        }
        s
    }
    /// The report printed on a violation: the invariants, the faults, the
    /// PDU trace, and the replay command.
    #[must_use]
    pub fn report(&self) -> String {
        let mut s = String::new();
        for v in &self.violations {
            let _ = writeln!(s, "VIOLATION {}: {}", v.invariant, v.detail);
        }
        for f in &self.faults {
            let _ = writeln!(s, "fault: {f}");
        }
        s.push_str(&self.transcript(false));
        let _ = writeln!(s, "replay: {}", self.replay());
        s
    }
}

fn pdu_name(info: &PduInfo) -> String {
    if info.eot {
        info.name().to_owned()
    } else {
        format!("{}+", info.name())
    }
}

#[derive(Debug, Clone)]
enum Agenda {
    Submit(usize, u32),
    Timer(usize, TimerId),
    Fault(usize),
    Detect(usize, usize),
    /// End of the fault phase: reset a tampered connection.
    Heal,
}

/// A simulation in progress. Build with [`Sim::new`], run with
/// [`Sim::run`].
#[derive(Debug)]
pub struct Sim {
    seed: u64,
    sc: Arc<Scenario>,
    rng: SplitMix64,
    /// The two MTAs (0 = A, 1 = B).
    pub ends: [ReferenceMta; 2],
    now: Tick,
    timers: [[Option<Tick>; 2]; 2],
    agenda: BTreeMap<(Tick, u64), Agenda>,
    agenda_seq: u64,
    net: Network,
    /// The connection each side was last told of (Connected / Incoming):
    /// the only one its transport events may refer to.
    announced: [Option<usize>; 2],
    pending: VecDeque<(usize, Input<'static>)>,
    cuts: Vec<(usize, usize)>,
    /// EOT TPKTs delivered so far, per name, and in total.
    kind_count: KindCount,
    index: u32,
    fired: Vec<bool>,
    fault_log: Vec<String>,
    /// The PDU at the front was put back after an abort fault: deliver it
    /// without matching faults again.
    skip_faults: bool,
    /// Connections ended by an abort fault (session AB, RT-U-ABORT).
    aborted: Vec<usize>,
    /// Connections a [`Tamper`] hit, and which tampers fired.
    tampered: Vec<usize>,
    tamper_fired: Vec<bool>,
    /// Connections before this one were abandoned by a side's fresh open.
    fresh_mark: [usize; 2],
    submitted: [Vec<Arc<str>>; 2],
    out: Output,
    pdus: u64,
}

impl Sim {
    /// A simulation of `scenario` from `seed`.
    #[must_use]
    pub fn new(seed: u64, scenario: Arc<Scenario>) -> Self {
        let mk = |i: usize| {
            let mut c = MtaConfig::new(if i == 0 { "MTA-A" } else { "MTA-B" }, scenario.opener[i]);
            c.machine.mode = scenario.mode;
            c.machine.dialogue = scenario.dialogue;
            c.backlog_threshold = scenario.backlog_threshold;
            ReferenceMta::new(c.with_flaw(scenario.flaws[i]))
        };
        let mut s = Sim {
            seed,
            rng: SplitMix64::new(seed),
            ends: [mk(0), mk(1)],
            now: 0,
            timers: [[None; 2]; 2],
            agenda: BTreeMap::new(),
            agenda_seq: 0,
            net: Network::new(),
            announced: [None; 2],
            pending: VecDeque::new(),
            cuts: Vec::new(),
            kind_count: KindCount::default(),
            index: 0,
            fired: vec![false; scenario.faults.len()],
            fault_log: Vec::new(),
            aborted: Vec::new(),
            tampered: Vec::new(),
            fresh_mark: [0; 2],
            tamper_fired: vec![false; scenario.tamper.len()],
            skip_faults: false,
            submitted: [Vec::new(), Vec::new()],
            out: scenario.outputs.take(),
            pdus: 0,
            sc: scenario,
        };
        for (i, sub) in s.sc.submit.clone().iter().enumerate() {
            s.schedule(sub.at, Agenda::Submit(i, 0));
        }
        for (i, f) in s.sc.faults.clone().iter().enumerate() {
            if let When::At(t) = f.when {
                s.schedule(t, Agenda::Fault(i));
            }
        }
        if !s.sc.tamper.is_empty() {
            let at = s.sc.fault_phase;
            s.schedule(at, Agenda::Heal);
        }
        s
    }

    /// Without a trace (benchmarks): invariants from the tracker are then
    /// not checked, only the MTAs' records.
    #[must_use]
    pub fn unrecorded(mut self) -> Self {
        self.net.record = false;
        self
    }

    fn schedule(&mut self, at: Tick, a: Agenda) {
        self.agenda_seq += 1;
        self.agenda.insert((at, self.agenda_seq), a);
    }

    fn in_fault_phase(&self) -> bool {
        self.now < self.sc.fault_phase
    }

    fn label(side: usize, n: u32) -> String {
        format!("{}-{n:04}", HOSTS[side])
    }

    fn message(&self, sub: &Submit, n: u32) -> Apdu {
        let len = sub.size.max(1);
        self.sc.messages.get((sub.side, n, len), || {
            let id = Self::label(sub.side, n);
            let content: Vec<u8> = (0..len).map(|k| (k as u32).wrapping_mul(7).wrapping_add(n) as u8).collect();
            Apdu::message(&id, &content)
        })
    }

    /// Run to the end of the healthy phase (or until nothing is left to
    /// happen) and judge the invariants.
    pub fn run(mut self) -> Outcome {
        let deadline = self.sc.fault_phase.saturating_add(self.sc.healthy_bound);
        // A guard against a livelock that keeps virtual time still.
        let mut budget: u64 = 2_000_000;
        while budget > 0 && self.step(deadline) {
            budget -= 1;
        }
        self.judge()
    }

    /// One event; `false` when nothing is left before `deadline`.
    fn step(&mut self, deadline: Tick) -> bool {
        if let Some((who, input)) = self.pending.pop_front() {
            if input == Input::Transport(TransportEvent::Incoming) {
                self.announced[who] = self.net.conn;
            }
            self.feed(who, MtaInput::Machine(input));
            return true;
        }
        let wire_at = self.net.wire.front().map(Flight::at);
        let agenda_at = self.agenda.keys().next().map(|k| k.0);
        let next = match (wire_at, agenda_at) {
            (None, None) => return false,
            (Some(w), Some(a)) => w.min(a),
            (Some(w), None) => w,
            (None, Some(a)) => a,
        };
        if next > deadline {
            return false;
        }
        self.now = self.now.max(next);
        if agenda_at == Some(next) && wire_at.is_none_or(|w| w > next) {
            let Some((_, a)) = self.agenda.pop_first() else { return false };
            self.agenda_item(a);
        } else if let Some(f) = self.net.wire.pop_front() {
            self.flight(f);
        }
        true
    }

    fn agenda_item(&mut self, a: Agenda) {
        match a {
            Agenda::Submit(i, k) => {
                let Some(sub) = self.sc.submit.get(i).cloned() else { return };
                let n = self.submitted[sub.side].len() as u32 + 1;
                let m = self.message(&sub, n);
                self.submitted[sub.side].push(m.label.clone());
                self.feed(sub.side, MtaInput::Submit(m));
                if k + 1 < sub.count {
                    let at = self.now.saturating_add(sub.every);
                    self.schedule(at, Agenda::Submit(i, k + 1));
                }
            }
            Agenda::Timer(who, id) => {
                if self.timers[who][id as usize] == Some(self.now) {
                    self.timers[who][id as usize] = None;
                    self.feed(who, MtaInput::Machine(Input::Timer(id)));
                }
            }
            Agenda::Fault(i) => {
                if self.in_fault_phase() && !self.fired[i] {
                    self.fired[i] = true;
                    let f = self.sc.faults[i].clone();
                    self.apply(&f, None);
                }
            }
            Agenda::Detect(conn, who) => self.tell(conn, who),
            Agenda::Heal => self.heal(),
        }
    }

    fn feed(&mut self, who: usize, input: MtaInput<'_>) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let fresh = self.ends[who].fresh_opens();
        let timer = matches!(input, MtaInput::Machine(Input::Timer(_)));
        self.ends[who].handle(self.now, input, &mut out);
        // The MTA gave up recovering on a timer (the initiator's attempts
        // exhausted, each ended by a fault before it was accepted, or the
        // responder's wait over): an end of its own after the network
        // defeated every attempt, judged as its fresh open is below. A
        // machine that never tries (Flaw::NoRecovery) gives up on the loss
        // itself, not on a timer, and stays judged; so does one whose
        // recovery was refused (on the RF). Found by turn_scenario
        // (crash-526d269c).
        let gave_up = timer
            && out
                .actions
                .iter()
                .any(|a| matches!(a, Action::Indication(Indication::PAbortInd { reason: PAbortReason::Lost })));
        if self.ends[who].fresh_opens() != fresh || gave_up {
            // The MTA gave up its association (backlog: abort, open afresh),
            // open or lost and awaiting recovery: an abort of its own, which
            // abandons every connection since its previous fresh open (the
            // association and its recovery attempts), judged as an abort
            // fault is.
            for c in self.fresh_mark[who]..self.net.conns.len() {
                if !self.aborted.contains(&c) {
                    self.aborted.push(c);
                }
            }
            self.fresh_mark[who] = self.net.conns.len();
        }
        self.actions(who, &out);
        self.out = out;
    }

    fn actions(&mut self, who: usize, out: &Output) {
        for a in &out.actions {
            match a {
                Action::Transmit(t) => self.transmit(who, out.bytes(t), t.pdu),
                Action::Indication(_) => {}
                Action::Connect => {
                    if let Some(c) = self.net.conn {
                        self.net.reset(c);
                        if self.net.conns.get(c).is_some_and(|i| !i.dead) {
                            self.note(c, who, TraceKind::Closed(CloseHow::Rst));
                        }
                    }
                    // A loss of the old connection not yet handed over is
                    // no event for a machine that now opens a new one (as
                    // in `tell`): delivered after the Connect, it would
                    // read as the new connection failing.
                    let lost = Input::Transport(TransportEvent::Lost);
                    self.pending.retain(|(w, i)| !(*w == who && *i == lost));
                    // A connection opened to recover serves the association
                    // of the connection lost before it.
                    let serves = if self.ends[who].machine().recovering() {
                        self.announced[who].and_then(|p| self.net.conns.get(p)).map(|p| p.serves)
                    } else {
                        None
                    };
                    let c = self.net.open(self.now, who, serves);
                    self.announced[who] = Some(c);
                    self.pending.push_back((who, Input::Transport(TransportEvent::Connected)));
                    self.pending.push_back((1 - who, Input::Transport(TransportEvent::Incoming)));
                }
                Action::Disconnect => {
                    if let Some(c) = self.net.conn.filter(|c| self.announced[who] == Some(*c)) {
                        let at = self.arrival();
                        if let Some(i) = self.net.conns.get_mut(c) {
                            i.closed_by[who] = true;
                            i.told[who] = true;
                        }
                        self.net.wire.push_back(Flight::Fin { conn: c, from: who, at });
                    }
                }
                Action::SetTimer(id, t) => {
                    self.timers[who][*id as usize] = Some(*t);
                    self.schedule(*t, Agenda::Timer(who, *id));
                }
                Action::CancelTimer(id) => self.timers[who][*id as usize] = None,
            }
        }
    }

    /// When something sent now arrives: latency plus jitter, never before
    /// what is already in flight (TCP keeps order).
    fn arrival(&mut self) -> Tick {
        let j = if self.sc.jitter > 0 { self.rng.below(self.sc.jitter) } else { 0 };
        let at = self.now.saturating_add(self.sc.latency).saturating_add(j);
        self.net.wire.back().map_or(at, |f| at.max(f.at()))
    }

    fn transmit(&mut self, who: usize, bytes: &[u8], info: PduInfo) {
        // Bytes go on the connection the sender knows of; if that one was
        // replaced (the peer connected again meanwhile), they are lost.
        let Some(c) = self.net.conn.filter(|c| self.announced[who] == Some(*c)) else { return };
        let Some(ci) = self.net.conns.get(c) else { return };
        if ci.closed_by[who] || ci.told[who] {
            return;
        }
        if ci.dead {
            // A write to a dead connection fails: the sender learns now.
            self.pending.push_back((who, Input::Transport(TransportEvent::Lost)));
            if let Some(ci) = self.net.conns.get_mut(c) {
                ci.told[who] = true;
            }
            return;
        }
        let at = self.arrival();
        self.net.send(self.now, c, who, bytes, info, at);
    }

    fn note(&mut self, conn: usize, from: usize, kind: TraceKind) {
        self.net.note(self.now, conn, from, kind);
    }

    fn live(&self, conn: usize, to: usize) -> bool {
        self.net.conn == Some(conn) && self.net.conns.get(conn).is_some_and(|i| !i.closed_by[to] && !i.told[to])
    }

    fn flight(&mut self, f: Flight) {
        match f {
            Flight::Pdu { conn, from, bytes, info, trace, .. } => {
                let to = 1 - from;
                if !self.live(conn, to) || self.net.conns.get(conn).is_some_and(|i| i.dead) {
                    self.net.recycle(bytes);
                    return;
                }
                // Faults on PDU boundaries and cuts.
                let mut after = Vec::new();
                let skip = std::mem::take(&mut self.skip_faults);
                if info.eot && self.in_fault_phase() && !skip {
                    let n_kind = self.kind_count.get(info.name()) + 1;
                    let idx = self.index + 1;
                    for i in 0..self.sc.faults.len() {
                        if self.fired[i] {
                            continue;
                        }
                        let f = &self.sc.faults[i];
                        let (hit, before) = match &f.when {
                            When::Before { pdu, n } => (pdu_matches(pdu, info, n_kind, idx, *n), true),
                            When::After { pdu, n } => (pdu_matches(pdu, info, n_kind, idx, *n), false),
                            When::Random { rate } => (self.rng.chance(*rate), self.rng.below(2) == 0),
                            When::At(_) => (false, false),
                        };
                        if !hit {
                            continue;
                        }
                        if !matches!(f.when, When::Random { .. }) {
                            self.fired[i] = true;
                        }
                        let f = if let When::Random { .. } = f.when { self.random_fault() } else { f.clone() };
                        if before {
                            let cut = matches!(f.how, How::Cut).then_some(bytes.len() / 2);
                            self.apply(&f, cut.zip(trace).map(|(n, t)| (t, n)));
                            if matches!(f.how, How::SessionAbort | How::UAbort) {
                                // An abort does not take back what TCP
                                // already carries: the abort is requested
                                // first, the PDU still arrives (unless its
                                // receiver has closed meanwhile).
                                let at = self.now;
                                self.net.wire.push_front(Flight::Pdu { conn, from, bytes, info, trace, at });
                                self.skip_faults = true;
                            } else {
                                self.net.recycle(bytes);
                            }
                            return;
                        }
                        after.push(f);
                    }
                    if after.is_empty() && self.tampers(conn, from, &bytes, info, trace, n_kind, idx) {
                        return;
                    }
                }
                if info.eot {
                    self.kind_count.bump(info.name());
                    self.index += 1;
                }
                self.net.delivered(trace);
                self.pdus += 1;
                self.feed(to, MtaInput::Machine(Input::Received(&bytes)));
                self.net.recycle(bytes);
                for f in after {
                    self.apply(&f, None);
                }
            }
            Flight::Fin { conn, from, .. } => {
                if self.net.conn == Some(conn) {
                    self.note(conn, from, TraceKind::Closed(CloseHow::Fin));
                    self.net.conn = None;
                    let to = 1 - from;
                    if self.net.conns.get(conn).is_some_and(|i| !i.closed_by[to] && !i.told[to]) {
                        self.tell(conn, to);
                    }
                }
            }
            Flight::Lost { conn, to, .. } => self.tell(conn, to),
        }
    }

    fn tell(&mut self, conn: usize, to: usize) {
        let Some(ci) = self.net.conns.get_mut(conn) else { return };
        if ci.told[to] || ci.closed_by[to] {
            return;
        }
        ci.told[to] = true;
        if self.net.conn == Some(conn) && ci.told == [true, true] {
            self.net.conn = None;
        }
        if self.announced[to] != Some(conn) {
            // A newer connection was announced to it: the old one's end is
            // no event for the machine (one transport at a time).
            return;
        }
        self.pending.push_back((to, Input::Transport(TransportEvent::Lost)));
    }

    fn random_fault(&mut self) -> Fault {
        let how = [How::Fin, How::Rst, How::SessionAbort, How::UAbort, How::Cut][self.rng.below(5) as usize];
        let dirs = [Dirs::A, Dirs::B, Dirs::Both][self.rng.below(3) as usize];
        Fault { when: When::Random { rate: 0.0 }, how, dirs }
    }

    /// Carry out a fault now (`cut`: the PDU being cut and the octets that
    /// reach the peer).
    fn apply(&mut self, f: &Fault, cut: Option<(usize, usize)>) {
        let Some(c) = self.net.conn else { return };
        self.fault_log.push(format!("t={} #{c} {f}", self.now));
        let sides: &[usize] = match f.dirs {
            Dirs::A => &[0],
            Dirs::B => &[1],
            Dirs::Both => &[0, 1],
        };
        match f.how {
            How::Rst | How::Cut => {
                if let Some((t, n)) = cut {
                    self.cuts.push((t, n));
                }
                self.net.reset(c);
                self.net.conn = Some(c);
                self.kill(c, sides, CloseHow::Rst);
            }
            How::Fin => self.kill(c, sides, CloseHow::Fin),
            How::SessionAbort => {
                self.abort_ends(c);
                for &s in sides {
                    let mut t = Vec::new();
                    rtse_codec::session::emit(
                        &rtse_codec::session::Spdu::ab(rtse_codec::session::TD_RELEASE, None),
                        &mut t,
                    );
                    let mut b = Vec::new();
                    rtse_codec::tpkt::emit_header(3 + t.len(), &mut b);
                    b.extend_from_slice(&rtse_codec::cotp::dt_header(true));
                    b.extend_from_slice(&t);
                    let info = PduInfo { tpdu: "DT", spdu: Some(rtse_codec::session::SpduKind::Ab), eot: true };
                    self.transmit(s, &b, info);
                }
                // The aborting providers close; their users see the loss.
                for &s in sides {
                    let at = self.arrival();
                    if let Some(ci) = self.net.conns.get_mut(c) {
                        ci.closed_by[s] = true;
                    }
                    self.net.wire.push_back(Flight::Fin { conn: c, from: s, at });
                    self.pending.push_back((s, Input::Transport(TransportEvent::Lost)));
                }
            }
            How::UAbort => {
                self.abort_ends(c);
                for &s in sides {
                    if self.net.conns.get(c).is_some_and(|i| !i.told[s] && !i.closed_by[s]) {
                        self.pending.push_back((s, Input::Request(crate::machine::Request::UAbort)));
                    }
                }
            }
        }
    }

    /// An abort on connection `c` ends its association; when `c` is a
    /// recovery attempt, that is the association being recovered, which
    /// the tracker knows under the connection that opened it. Decision:
    /// an abort ends the association whether it is open or recovering (the
    /// reconstructed RTPM state table, spec/rtse.md §4: "any: AB rcvd ->
    /// RT-U-ABORT ind / RT-P-ABORT ind -> IDLE", RECOVERY included, and no
    /// recovery follows an abort), so what
    /// was unconfirmed when the connection was lost is excused exactly as
    /// for an abort on an open association (docs/simulator.md "Aborts").
    /// Seeds 28 and 42 of `random` found this: the abort was charged to the
    /// recovery's connection only, and the tracker then reported the
    /// recovered association's transfer as lost.
    fn abort_ends(&mut self, c: usize) {
        let root = self.net.conns.get(c).map_or(c, |i| i.serves);
        // Every connection that carried the association (its first, each
        // recovery): the tracker may report on any of them.
        for (k, i) in self.net.conns.iter().enumerate() {
            if (k == c || i.serves == root) && !self.aborted.contains(&k) {
                self.aborted.push(k);
            }
        }
    }

    fn kill(&mut self, c: usize, sides: &[usize], how: CloseHow) {
        let Some(ci) = self.net.conns.get_mut(c) else { return };
        ci.dead = true;
        let from = if sides.len() == 1 { 1 - sides[0] } else { 0 };
        self.note(c, from, TraceKind::Closed(how));
        for who in 0..2 {
            if sides.contains(&who) {
                match how {
                    CloseHow::Fin => {
                        let at = self.net.wire.back().map_or(self.now, Flight::at).max(self.now);
                        self.net.wire.push_back(Flight::Lost { conn: c, to: who, at });
                    }
                    _ => self.tell(c, who),
                }
            } else {
                let at = self.now.saturating_add(DETECT);
                self.schedule(at, Agenda::Detect(c, who));
            }
        }
    }

    fn judge(mut self) -> Outcome {
        self.sc.outputs.put(std::mem::take(&mut self.out));
        let mut violations = Vec::new();
        let initiators = self.net.initiators();
        if self.net.record {
            violations = tracker_violations(&self.net.trace, &initiators, &self.aborted, &self.tampered);
        }
        // Delivery records: exactly once. A tamper may duplicate a message
        // (at least once is then all that can hold), forge its label (a
        // mutated P1 envelope that still decodes) or forge its
        // confirmation (a duplicated AEA is a valid AEA of the next
        // activity: serial numbers restart with each one): a message can
        // then be confirmed and never delivered, through no fault of the
        // MTAs.
        let forged = !self.tampered.is_empty();
        for side in 0..2 {
            let rx = &self.ends[1 - side];
            for l in &self.submitted[side] {
                let n = rx.delivered().get(l).copied().unwrap_or(0);
                let queued = self.ends[side].queue().any(|a| a.label == *l);
                // After an abort the reference MTA re-sends what was not
                // confirmed: at least once is all RTSE promises there.
                if n > 1 && self.aborted.is_empty() && self.tampered.is_empty() {
                    violations.push(Violation {
                        invariant: "exactly-once",
                        detail: format!("{l} delivered {n} times to {}", HOSTS[1 - side]),
                    });
                } else if n == 0 && !queued && !forged {
                    violations.push(Violation {
                        invariant: "exactly-once",
                        detail: format!("{l} confirmed to {} but never delivered", HOSTS[side]),
                    });
                }
            }
        }
        for (side, host) in HOSTS.iter().enumerate() {
            let b = self.ends[side].backlog();
            if b > 0 {
                violations.push(Violation {
                    invariant: "backlog-drains",
                    detail: format!(
                        "{host} still has {b} message(s) queued {} s into the healthy phase",
                        self.sc.healthy_bound / 1_000_000_000
                    ),
                });
            }
        }
        let [a, b] = [self.ends[0].machine(), self.ends[1].machine()];
        if a.is_open() && b.is_open() && self.net.conn.is_some() {
            let holders = [a, b].iter().filter(|m| m.holds_turn() || m.gtc_pending()).count();
            if holders != 1 {
                violations.push(Violation {
                    invariant: "holder-after-recovery",
                    detail: format!("at the end of the healthy phase {holders} sides hold the Turn"),
                });
            }
        }
        violations.dedup();
        Outcome {
            seed: self.seed,
            scenario: self.sc.name.clone(),
            violations,
            trace: self.net.trace,
            initiators,
            cuts: self.cuts,
            pdus: self.pdus,
            faults: self.fault_log,
            end: self.now,
        }
    }
}

/// The Turn tracker's verdict on a recorded run, as violations: the trace
/// goes through [`observe_trace`]; each anomaly is named by the
/// [`Invariant`] that lists its kind (`protocol` for the standard's other
/// procedure rules). `aborted` lists the connections ended by an injected
/// abort (association = connection, in order), where some anomalies are
/// the abort's doing (decision, docs/simulator.md "Aborts"). Used by the
/// simulator and the model check alike.
pub(crate) fn tracker_violations(
    trace: &[TraceItem],
    initiators: &[usize],
    aborted: &[usize],
    tampered: &[usize],
) -> Vec<Violation> {
    linker_violations(&observe_trace(trace, initiators), aborted, tampered)
}

/// [`tracker_violations`] of a trace already observed.
pub(crate) fn linker_violations(linker: &AssociationLinker, aborted: &[usize], tampered: &[usize]) -> Vec<Violation> {
    let mut violations = Vec::new();
    // Associations are opened in connection order: id == connection.
    let all: Vec<_> = linker.anomalies().collect();
    for &(id, a) in &all {
        let inv = Invariant::ALL.into_iter().find(|i| i.kinds().contains(&a.kind));
        // On an aborted association a please left unanswered when the
        // abort ended it (found by the tracker's finish, at the same event
        // as the please-unanswered) is the abort's doing, not a Turn lost
        // by recovery.
        let by_abort_end = inv == Some(Invariant::HolderAfterRecovery)
            && all
                .iter()
                .any(|&(i, b)| i == id && b.seq == a.seq && Invariant::PleaseAnswered.kinds().contains(&b.kind));
        // On a tampered association the network broke the protocol:
        // nothing the tracker sees there is the MTAs' doing. A forged
        // connection reference (a mutated CN or AC that still decodes)
        // leaves the recovery of that association quoting a reference the
        // tracker never saw.
        let forged_ref = !tampered.is_empty() && a.kind == AnomalyKind::RecoveryUnlinked;
        // A tampered PDU reaches beyond its association: answered by an
        // abort it can end the recovery of an earlier one, and a forged
        // confirmation (a duplicated AEA) is trusted by the recovery of a
        // later one. Unconfirmed transfers and unanswered pleases are then
        // the tamper's doing, as for an abort fault; the Turn invariants
        // and the delivery records are still judged.
        let after_tamper = !tampered.is_empty();
        // An abort fault that hits a recovery attempt ends the recovery of
        // the association it was recovering, too. (The responder has then
        // answered the recovery with an AC the initiator never got, so it
        // refuses a second attempt quoting the old connection: a recovery
        // whose AC is lost leaves the two sides quoting different
        // connections. Left open; the message is re-sent on a fresh
        // association and delivered once, which the delivery records
        // check.)
        let before_abort = aborted.iter().any(|&c| (id.0 as usize) < c);
        // The recovery of a tampered association inherits what the tracker
        // saw of it, and a mutated PDU the MTA still accepted may be one
        // the tracker rejected (a mutated AC whose P1 bind no longer
        // decodes: the tracker never saw the association established, so
        // it knows none of its transfers). A resume (AR) of a transfer
        // the tracker could not see is then the tamper's doing, not the
        // MTAs'. Found by turn_scenario (crash-68ebb98a).
        let blind_resume = matches!(a.kind, AnomalyKind::ActivityViolation | AnomalyKind::ResumeBeyondCheckpoint)
            && recovers_tampered(linker, id, tampered);
        let excused = tampered.contains(&(id.0 as usize))
            || forged_ref
            || blind_resume
            || (aborted.contains(&(id.0 as usize)) || after_tamper || before_abort)
                && (by_abort_end || matches!(inv, Some(Invariant::ExactlyOnce | Invariant::PleaseAnswered)));
        if !excused {
            // Anomalies outside the five invariants are the standard's
            // procedure rules (window, GTC during an activity, recovery by
            // the responder...): `protocol`.
            let name = inv.map_or("protocol", Invariant::name);
            violations.push(Violation { invariant: name, detail: format!("association {}: {a}", id.0) });
        }
    }
    violations
}

/// `id` recovers (directly or through a chain of recoveries) an
/// association that was tampered with.
fn recovers_tampered(linker: &AssociationLinker, id: AssocId, tampered: &[usize]) -> bool {
    let mut cur = id;
    // Bounded by the number of associations (a chain has no cycle, but
    // never trust that).
    for _ in 0..=linker.ids().count() {
        match linker.recovers(cur) {
            Some(prev) if prev != cur => {
                if tampered.contains(&(prev.0 as usize)) {
                    return true;
                }
                cur = prev;
            }
            _ => return false,
        }
    }
    false
}

impl Sim {
    /// Apply the first unfired [`TamperAt`] matching this PDU (the `n_kind`-th
    /// of its kind, `idx`-th overall); `true` when the PDU was consumed
    /// (delivered tampered, or put back).
    #[allow(clippy::too_many_arguments)]
    fn tampers(
        &mut self,
        conn: usize,
        from: usize,
        bytes: &[u8],
        info: PduInfo,
        trace: Option<usize>,
        n_kind: u32,
        idx: u32,
    ) -> bool {
        let Some(i) = (0..self.sc.tamper.len()).find(|&i| {
            !self.tamper_fired[i] && pdu_matches(&self.sc.tamper[i].pdu, info, n_kind, idx, self.sc.tamper[i].n)
        }) else {
            return false;
        };
        self.tamper_fired[i] = true;
        let what = self.sc.tamper[i].what;
        if !self.tampered.contains(&conn) {
            self.tampered.push(conn);
        }
        self.fault_log.push(format!("t={} #{conn} {what:?} {}", self.now, info.name()));
        let bytes = bytes.to_vec();
        match what {
            Tamper::Withhold(d) => {
                let at = self.now.saturating_add(d);
                self.net.wire.push_front(Flight::Pdu { conn, from, bytes, info, trace, at });
                self.skip_faults = true;
            }
            Tamper::Reorder => {
                let next = self.net.wire.iter().position(|f| matches!(f, Flight::Pdu { conn: c, .. } if *c == conn));
                let at = self.now;
                let Some(j) = next else {
                    // Nothing behind it: deliver it as it is.
                    self.net.wire.push_front(Flight::Pdu { conn, from, bytes, info, trace, at });
                    self.skip_faults = true;
                    return true;
                };
                let other = self.net.wire.remove(j);
                self.net.wire.push_front(Flight::Pdu { conn, from, bytes, info, trace, at });
                if let Some(Flight::Pdu { conn, from, bytes, info, trace, .. }) = other {
                    self.net.wire.push_front(Flight::Pdu { conn, from, bytes, info, trace, at });
                }
            }
            Tamper::Duplicate | Tamper::Mutate { .. } => {
                let mut got = bytes;
                if let Tamper::Mutate { offset, xor } = what {
                    let k = offset % got.len().max(1);
                    if let Some(b) = got.get_mut(k) {
                        *b ^= if xor == 0 { 0xff } else { xor };
                    }
                }
                // The tracker (a passive observer) sees what the receiver got.
                if let Some(TraceItem { kind: TraceKind::Pdu { bytes: b, delivered, .. }, .. }) =
                    trace.and_then(|t| self.net.trace.get_mut(t))
                {
                    b.clone_from(&got);
                    *delivered = true;
                }
                self.kind_count.bump(info.name());
                self.index += 1;
                self.pdus += 1;
                let to = 1 - from;
                self.feed(to, MtaInput::Machine(Input::Received(&got)));
                if what == Tamper::Duplicate && self.live(conn, to) {
                    self.note(conn, from, TraceKind::Pdu { bytes: got.clone(), info, delivered: true });
                    self.pdus += 1;
                    self.feed(to, MtaInput::Machine(Input::Received(&got)));
                }
            }
        }
        true
    }

    /// The network heals: a tampered connection still open is reset (see
    /// [`Tamper`]).
    fn heal(&mut self) {
        let Some(c) = self.net.conn else { return };
        if !self.tampered.contains(&c) || self.net.conns.get(c).is_none_or(|i| i.dead) {
            return;
        }
        self.fault_log.push(format!("t={} #{c} rst both (tampered connection reset as the network heals)", self.now));
        self.net.reset(c);
        self.net.conn = Some(c);
        self.kill(c, &[0, 1], CloseHow::Rst);
    }
}

/// EOT TPKTs delivered per name: a dozen names at most, looked up on
/// every delivery, so a short list rather than an ordered map.
#[derive(Debug, Default)]
struct KindCount(Vec<(&'static str, u32)>);

impl KindCount {
    /// The entry of `name` (one per text). The names are the machine's
    /// `&'static str` constants, so a scan by address nearly always finds
    /// it without comparing text (most names are two letters: comparing
    /// text is a call per entry); by text when it does not (the same name
    /// may be two constants).
    fn slot(&self, name: &str) -> Option<usize> {
        let by_address = self.0.iter().position(|(k, _)| std::ptr::eq(*k, name));
        by_address.or_else(|| self.0.iter().position(|(k, _)| *k == name))
    }
    fn get(&self, name: &str) -> u32 {
        self.slot(name).map_or(0, |i| self.0[i].1)
    }
    fn bump(&mut self, name: &'static str) {
        match self.slot(name) {
            Some(i) => self.0[i].1 += 1,
            None => self.0.push((name, 1)),
        }
    }
}

fn pdu_matches(pdu: &Option<String>, info: PduInfo, n_kind: u32, idx: u32, n: u32) -> bool {
    match pdu {
        Some(k) => k.eq_ignore_ascii_case(info.name()) && n_kind == n,
        None => idx == n,
    }
}

/// Run `(seed, scenario)`.
#[must_use]
pub fn run(seed: u64, scenario: &Arc<Scenario>) -> Outcome {
    Sim::new(seed, scenario.clone()).run()
}

/// Flaws to put on a side, for the CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// Flaw of A (`Some(None)`: force the reference).
    pub flaw_a: Option<Option<Flaw>>,
    /// Flaw of B.
    pub flaw_b: Option<Option<Flaw>>,
}

fn flaw_arg(s: &Option<String>) -> Result<Option<Option<Flaw>>, String> {
    match s.as_deref() {
        None => Ok(None),
        Some("reference" | "none") => Ok(Some(None)),
        Some(n) => n.parse::<Flaw>().map(|f| Some(Some(f))).map_err(|e| e.to_string()),
    }
}

/// `rtse sim`: run, print, export; returns the exit code.
pub fn command(a: &crate::cli::SimArgs, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> u8 {
    use crate::cli::exit;
    let sc = match Scenario::load(&a.scenario) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "rtse sim: {e}");
            return exit::USAGE;
        }
    };
    let (fa, fb) = match (flaw_arg(&a.flaw_a), flaw_arg(&a.flaw_b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(err, "rtse sim: {e}");
            return exit::USAGE;
        }
    };
    let mut s = (*sc).clone();
    if let Some(f) = fa {
        s.flaws[0] = f;
    }
    if let Some(f) = fb {
        s.flaws[1] = f;
    }
    let mut o = run(a.seed, &Arc::new(s));
    // The replay command must reproduce the overrides too.
    for (flag, v) in [("--flaw-a", &a.flaw_a), ("--flaw-b", &a.flaw_b)] {
        if let Some(v) = v {
            o.scenario = format!("{} {flag} {v}", o.scenario);
        }
    }
    if let Some(p) = &a.pcapng {
        if let Err(e) = std::fs::write(p, pcap::export(&o)) {
            let _ = writeln!(err, "rtse sim: {}: {e}", p.display());
            return exit::USAGE;
        }
    }
    let flaws = |f: Option<Flaw>| f.map_or("reference", Flaw::name);
    let _ = writeln!(
        out,
        "scenario {} seed {:#018x}: A {} B {}, {} TPKTs delivered, {} fault(s), {:.3} s virtual",
        a.scenario,
        a.seed,
        flaws(o_flaw(&sc, fa, 0)),
        flaws(o_flaw(&sc, fb, 1)),
        o.pdus,
        o.faults.len(),
        o.end as f64 / 1e9
    );
    if o.ok() {
        if a.trace {
            for f in &o.faults {
                let _ = writeln!(out, "fault: {f}");
            }
            let _ = write!(out, "{}", o.transcript(a.hex));
        }
        let _ = writeln!(out, "all invariants hold");
        exit::OK
    } else {
        let _ = write!(out, "{}", o.report());
        exit::FAIL
    }
}

fn o_flaw(sc: &Scenario, ov: Option<Option<Flaw>>, side: usize) -> Option<Flaw> {
    ov.unwrap_or(sc.flaws[side])
}
