//! An exhaustive model check of the machine itself: breadth-first search
//! over the states of two [`ReferenceMta`]s (each `Clone + Eq + Hash` over
//! its whole state), the TPKTs in flight on the one connection, the
//! pending transport events, the armed timers and a drop budget.
//!
//! Transitions from a state: the next pending transport event (taken
//! first, one at a time: they are local and immediate), else deliver the
//! head of A→B, deliver the head of B→A, submit a late message (once per
//! configured one), drop the connection (RST, both told; while the budget
//! lasts), and, when nothing is in flight, fire the earliest timer. States
//! are deduplicated by full equality (a `HashSet` of states).
//!
//! Judging (decision): a *quiet* state (nothing pending, nothing in
//! flight, no timer armed) or one with no successor is judged, and still
//! expanded (drops and late submissions may follow); the shortest
//! path to it (BFS order) is replayed as a trace through the Turn tracker
//! ([`crate::loopback::observe_trace`]), and the MTAs' records are read
//! (every message delivered exactly once, queues empty). Because states are
//! deduplicated, each final state is judged along its shortest path only;
//! a violation found is a real, shortest, reproducible PDU sequence.

use crate::flaw::Flaw;
use crate::loopback::{observe_trace, TraceItem, TraceKind};
use crate::machine::{Action, Apdu, Input, Output, PduInfo, Tick, TimerId, TransportEvent};
use crate::mta::{MtaConfig, MtaInput, ReferenceMta};
use crate::tracker::{CloseHow, Invariant};
use std::collections::{HashSet, VecDeque};

/// What to explore.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Flaws of A and B.
    pub flaws: [Option<Flaw>; 2],
    /// Messages each side has at the start.
    pub initial: [u32; 2],
    /// Messages each side may be given later, at any point.
    pub late: [u32; 2],
    /// Connection drops allowed.
    pub drops: u8,
    /// Stop after this many states.
    pub max_states: usize,
}

impl ModelConfig {
    /// A 1 + 1 late, B 1 (three messages), two drops, twa (please and
    /// give), normal mode.
    #[must_use]
    pub fn small(flaws: [Option<Flaw>; 2]) -> Self {
        ModelConfig { flaws, initial: [1, 1], late: [1, 0], drops: 2, max_states: 2_000_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    Pdu(Vec<u8>, PduInfo),
    Fin,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    ends: [ReferenceMta; 2],
    /// Connections opened so far; the current one is `conns - 1` if `up`.
    conns: u8,
    up: bool,
    initiator: u8,
    closed: [bool; 2],
    wire: [VecDeque<Item>; 2],
    pending: VecDeque<(u8, TransportEvent)>,
    timers: [[Option<Tick>; 2]; 2],
    now: Tick,
    drops: u8,
    late: [u32; 2],
}

/// A step of a path, for the counterexample.
#[derive(Debug, Clone)]
struct Node {
    parent: u32,
    step: String,
    trace: Vec<TraceItem>,
}

/// The result of a check.
#[derive(Debug, Clone)]
pub struct ModelResult {
    /// Distinct states explored.
    pub states: usize,
    /// Final states judged.
    pub finals: usize,
    /// The first violation (BFS: along a shortest path): invariant, detail,
    /// the steps.
    pub counterexample: Option<(String, String, Vec<String>)>,
    /// `max_states` was reached.
    pub truncated: bool,
}

fn label(side: usize, n: u32) -> Apdu {
    Apdu::message(&format!("{}-{n:04}", crate::loopback::HOSTS[side]), b"model")
}

/// Run the search.
#[must_use]
pub fn check(cfg: &ModelConfig) -> ModelResult {
    let mk = |i: usize| {
        let c = MtaConfig::new(if i == 0 { "MTA-A" } else { "MTA-B" }, i == 0);
        ReferenceMta::new(c.with_flaw(cfg.flaws[i]))
    };
    let mut s0 = State {
        ends: [mk(0), mk(1)],
        conns: 0,
        up: false,
        initiator: 0,
        closed: [false; 2],
        wire: [VecDeque::new(), VecDeque::new()],
        pending: VecDeque::new(),
        timers: [[None; 2]; 2],
        now: 0,
        drops: cfg.drops,
        late: cfg.late,
    };
    let mut out = Output::new();
    let mut t0 = Vec::new();
    let mut submitted: [Vec<Apdu>; 2] = [Vec::new(), Vec::new()];
    #[allow(clippy::needless_range_loop)]
    for side in 0..2 {
        for n in 0..cfg.initial[side] + cfg.late[side] {
            submitted[side].push(label(side, n + 1));
        }
        for n in 0..cfg.initial[side] {
            let m = label(side, n + 1);
            feed(&mut s0, side, MtaInput::Submit(m), &mut out, &mut t0);
        }
    }
    let mut seen: HashSet<State> = HashSet::new();
    let mut nodes: Vec<Node> = vec![Node { parent: u32::MAX, step: "start".into(), trace: t0 }];
    let mut queue: VecDeque<(State, u32)> = VecDeque::new();
    seen.insert(s0.clone());
    queue.push_back((s0, 0));
    let mut finals = 0;
    let mut truncated = false;
    while let Some((s, id)) = queue.pop_front() {
        let succ = successors(&s, cfg, &submitted, &mut out);
        let quiet = s.pending.is_empty()
            && s.wire.iter().all(VecDeque::is_empty)
            && s.timers.iter().flatten().all(Option::is_none);
        if quiet || succ.is_empty() {
            finals += 1;
            if let Some((inv, detail)) = judge(&s, &nodes, id, &submitted, cfg) {
                return ModelResult {
                    states: seen.len(),
                    finals,
                    counterexample: Some((inv, detail, path(&nodes, id))),
                    truncated,
                };
            }
        }
        for (n, step, trace) in succ {
            if seen.len() >= cfg.max_states {
                truncated = true;
                break;
            }
            if seen.insert(n.clone()) {
                nodes.push(Node { parent: id, step, trace });
                queue.push_back((n, (nodes.len() - 1) as u32));
            }
        }
    }
    ModelResult { states: seen.len(), finals, counterexample: None, truncated }
}

fn path(nodes: &[Node], mut id: u32) -> Vec<String> {
    let mut steps = Vec::new();
    while let Some(n) = nodes.get(id as usize) {
        steps.push(n.step.clone());
        id = n.parent;
    }
    steps.reverse();
    steps
}

fn judge(
    s: &State,
    nodes: &[Node],
    id: u32,
    submitted: &[Vec<Apdu>; 2],
    cfg: &ModelConfig,
) -> Option<(String, String)> {
    let mut ids = Vec::new();
    let mut i = id;
    while let Some(n) = nodes.get(i as usize) {
        ids.push(i);
        i = n.parent;
    }
    ids.reverse();
    let trace: Vec<TraceItem> = ids.iter().flat_map(|&i| nodes[i as usize].trace.iter().cloned()).collect();
    let mut initiators = Vec::new();
    for t in &trace {
        if matches!(t.kind, TraceKind::Open) {
            initiators.push(t.from);
        }
    }
    let linker = observe_trace(&trace, &initiators);
    if let Some((_, a)) = linker.anomalies().next() {
        let inv = Invariant::ALL.into_iter().find(|i| i.kinds().contains(&a.kind));
        return Some((inv.map_or("protocol", Invariant::name).to_owned(), a.to_string()));
    }
    for side in 0..2 {
        // Late messages not submitted on this path are not judged.
        let made = (cfg.initial[side] + cfg.late[side] - s.late[side]) as usize;
        for m in submitted[side].iter().take(made) {
            let n = s.ends[1 - side].delivered().get(&m.label).copied().unwrap_or(0);
            if n != 1 {
                return Some(("exactly-once".into(), format!("{} delivered {n} times", m.label)));
            }
        }
        if s.ends[side].backlog() > 0 {
            return Some((
                "backlog-drains".into(),
                format!("{} keeps {} queued", ["A", "B"][side], s.ends[side].backlog()),
            ));
        }
    }
    None
}

type Succ = Vec<(State, String, Vec<TraceItem>)>;

fn successors(s: &State, cfg: &ModelConfig, submitted: &[Vec<Apdu>; 2], out: &mut Output) -> Succ {
    let mut v: Succ = Vec::new();
    if let Some(&(who, ev)) = s.pending.front() {
        let mut n = s.clone();
        n.pending.pop_front();
        let mut t = Vec::new();
        feed(&mut n, who as usize, MtaInput::Machine(Input::Transport(ev)), out, &mut t);
        v.push((n, format!("{} {ev:?}", ["A", "B"][who as usize]), t));
        return v;
    }
    for dir in 0..2 {
        let Some(item) = s.wire[dir].front() else { continue };
        let mut n = s.clone();
        let item = item.clone();
        n.wire[dir].pop_front();
        let mut t = Vec::new();
        let to = 1 - dir;
        let step = match item {
            Item::Pdu(bytes, info) => {
                t.push(TraceItem {
                    time: n.now,
                    conn: usize::from(n.conns) - 1,
                    from: dir,
                    kind: TraceKind::Pdu { bytes: bytes.clone(), info, delivered: true },
                });
                if !n.closed[to] {
                    feed(&mut n, to, MtaInput::Machine(Input::Received(&bytes)), out, &mut t);
                }
                format!("{}>{} {}", ["A", "B"][dir], ["A", "B"][to], info.name())
            }
            Item::Fin => {
                t.push(TraceItem {
                    time: n.now,
                    conn: usize::from(n.conns) - 1,
                    from: dir,
                    kind: TraceKind::Closed(CloseHow::Fin),
                });
                n.up = false;
                if !n.closed[to] {
                    n.closed[to] = true;
                    feed(&mut n, to, MtaInput::Machine(Input::Transport(TransportEvent::Lost)), out, &mut t);
                }
                format!("{} fin", ["A", "B"][dir])
            }
        };
        v.push((n, step, t));
    }
    for side in 0..2 {
        if s.late[side] > 0 {
            let mut n = s.clone();
            n.late[side] -= 1;
            let k = cfg.initial[side] + cfg.late[side] - n.late[side];
            let m = submitted[side][(k - 1) as usize].clone();
            let mut t = Vec::new();
            feed(&mut n, side, MtaInput::Submit(m), out, &mut t);
            v.push((n, format!("{} submit", ["A", "B"][side]), t));
        }
    }
    if s.up && s.drops > 0 && (!s.wire[0].is_empty() || !s.wire[1].is_empty() || s.closed == [false, false]) {
        let mut n = s.clone();
        n.drops -= 1;
        n.wire = [VecDeque::new(), VecDeque::new()];
        n.up = false;
        let t = vec![TraceItem {
            time: n.now,
            conn: usize::from(n.conns) - 1,
            from: 0,
            kind: TraceKind::Closed(CloseHow::Rst),
        }];
        for who in 0..2u8 {
            if !n.closed[who as usize] {
                n.closed[who as usize] = true;
                n.pending.push_back((who, TransportEvent::Lost));
            }
        }
        v.push((n, "drop (RST)".into(), t));
    }
    if s.wire[0].is_empty() && s.wire[1].is_empty() {
        let mut best: Option<(Tick, usize, usize)> = None;
        for (who, ts) in s.timers.iter().enumerate() {
            for (id, t) in ts.iter().enumerate() {
                if let Some(t) = *t {
                    if best.is_none_or(|b| t < b.0) {
                        best = Some((t, who, id));
                    }
                }
            }
        }
        if let Some((t, who, id)) = best {
            let mut n = s.clone();
            n.timers[who][id] = None;
            n.now = n.now.max(t);
            let mut tr = Vec::new();
            feed(&mut n, who, MtaInput::Machine(Input::Timer(TimerId::ALL[id])), out, &mut tr);
            v.push((n, format!("{} timer {:?}", ["A", "B"][who], TimerId::ALL[id]), tr));
        }
    }
    v
}

fn feed(s: &mut State, who: usize, input: MtaInput<'_>, out: &mut Output, trace: &mut Vec<TraceItem>) {
    out.clear();
    s.ends[who].handle(s.now, input, out);
    for a in &out.actions {
        match a {
            Action::Transmit(t) => {
                if s.up && !s.closed[who] {
                    s.wire[who].push_back(Item::Pdu(out.bytes(t).to_vec(), t.pdu));
                }
            }
            Action::Connect => {
                s.conns = s.conns.saturating_add(1);
                s.up = true;
                s.initiator = who as u8;
                s.closed = [false; 2];
                s.wire = [VecDeque::new(), VecDeque::new()];
                trace.push(TraceItem { time: s.now, conn: usize::from(s.conns) - 1, from: who, kind: TraceKind::Open });
                s.pending.push_back((who as u8, TransportEvent::Connected));
                s.pending.push_back((1 - who as u8, TransportEvent::Incoming));
            }
            Action::Disconnect => {
                if s.up && !s.closed[who] {
                    s.closed[who] = true;
                    s.wire[who].push_back(Item::Fin);
                }
            }
            Action::SetTimer(id, t) => s.timers[who][*id as usize] = Some(*t),
            Action::CancelTimer(id) => s.timers[who][*id as usize] = None,
            Action::Indication(_) => {}
        }
    }
}
