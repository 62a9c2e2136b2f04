//! A trivial, deterministic byte pump between two endpoints (machines or
//! MTAs): one transport connection at a time, FIFO delivery with a fixed
//! latency, timers, and a [`Loopback::drop_connection`] that loses the
//! connection and everything in flight. No randomness, no fault model: the
//! simulator builds those; this is what tests, the benchmark and examples
//! use to wire two endpoints back to back.
//!
//! It records a [`Trace`] of transport events and TPKTs (each marked
//! delivered or not) that [`Loopback::observe`] feeds, through
//! [`crate::observe::events`], to an [`AssociationLinker`]: the tracker sees
//! the PDUs the peer received (a PDU lost with its connection never reached
//! the other side, so it has no bearing on the Turn there).

use crate::machine::{Action, Indication, Input, Machine, Output, PduInfo, Tick, TimerId, TransportEvent};
use crate::mta::{MtaInput, ReferenceMta};
use crate::observe;
use crate::tracker::{AssociationLinker, CloseHow, Observed, Side, TrackerConfig, TurnEvent};
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::collections::VecDeque;

/// Something the pump can drive.
pub trait Endpoint {
    /// Feed one machine input.
    fn input(&mut self, now: Tick, input: Input<'_>, out: &mut Output);
}

impl Endpoint for Machine {
    fn input(&mut self, now: Tick, input: Input<'_>, out: &mut Output) {
        self.handle(now, input, out);
    }
}

impl Endpoint for ReferenceMta {
    fn input(&mut self, now: Tick, input: Input<'_>, out: &mut Output) {
        self.handle(now, MtaInput::Machine(input), out);
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceItem {
    /// Time it happened (PDUs: when sent).
    pub time: Tick,
    /// Connection number (0, 1, ... in order of creation).
    pub conn: usize,
    /// Endpoint (0 or 1) that sent it / opened or closed the connection.
    pub from: usize,
    /// What.
    pub kind: TraceKind,
}

/// What a [`TraceItem`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceKind {
    /// The connection was opened by `from`.
    Open,
    /// A TPKT sent by `from`.
    Pdu {
        /// Its bytes.
        bytes: Vec<u8>,
        /// What it is.
        info: PduInfo,
        /// Whether it reached the peer.
        delivered: bool,
    },
    /// The connection ended (`Fin`: closed by `from`; `Rst`: dropped).
    Closed(CloseHow),
}

/// Everything recorded, in order.
pub type Trace = Vec<TraceItem>;

/// One transport connection's bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    /// The endpoint that opened it.
    pub(crate) initiator: usize,
    /// Closed by this side (its machine asked to disconnect).
    pub(crate) closed_by: [bool; 2],
    /// Killed by a fault (simulator).
    pub(crate) dead: bool,
    /// This side was told (Lost) or closed it itself (simulator).
    pub(crate) told: [bool; 2],
    /// The connection that opened the association this one carries (itself,
    /// or, for a recovery, the first connection of the recovered one).
    pub(crate) serves: usize,
}

/// Something on the wire.
#[derive(Debug)]
pub(crate) enum Flight {
    /// A TPKT.
    Pdu {
        conn: usize,
        from: usize,
        bytes: Vec<u8>,
        info: PduInfo,
        /// Its trace item, if recorded.
        trace: Option<usize>,
        at: Tick,
    },
    /// `from` closed (FIN after its data).
    Fin { conn: usize, from: usize, at: Tick },
    /// Tell `to` that `conn` is lost (after in-flight data; simulator).
    Lost { conn: usize, to: usize, at: Tick },
}

impl Flight {
    /// When it arrives.
    pub(crate) fn at(&self) -> Tick {
        match self {
            Flight::Pdu { at, .. } | Flight::Fin { at, .. } | Flight::Lost { at, .. } => *at,
        }
    }
}

/// The network both drivers use (the loopback and the simulator): one
/// current transport connection, a FIFO wire, the recorded [`Trace`], and a
/// pool of TPKT buffers. Delivery order, timing and faults are the
/// driver's; the bookkeeping is here, once.
#[derive(Debug)]
pub(crate) struct Network {
    /// The current connection.
    pub(crate) conn: Option<usize>,
    /// Every connection so far.
    pub(crate) conns: Vec<Conn>,
    /// In flight, in order.
    pub(crate) wire: VecDeque<Flight>,
    /// Whether to record the trace.
    pub(crate) record: bool,
    /// The trace.
    pub(crate) trace: Trace,
    spare: Vec<Vec<u8>>,
}

impl Network {
    pub(crate) fn new() -> Self {
        Network {
            conn: None,
            conns: Vec::new(),
            wire: VecDeque::new(),
            record: true,
            trace: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Record a transport event (when recording).
    pub(crate) fn note(&mut self, now: Tick, conn: usize, from: usize, kind: TraceKind) {
        if self.record {
            self.trace.push(TraceItem { time: now, conn, from, kind });
        }
    }

    /// Forget connection `c`: what is in flight on it is lost.
    pub(crate) fn reset(&mut self, c: usize) {
        let spare = &mut self.spare;
        self.wire.retain_mut(|f| match f {
            Flight::Pdu { conn, bytes, .. } if *conn == c => {
                spare.push(std::mem::take(bytes));
                false
            }
            Flight::Fin { conn, .. } => *conn != c,
            _ => true,
        });
        if self.conn == Some(c) {
            self.conn = None;
        }
    }

    /// `who` opens a new connection (the current one, if any, is reset
    /// first): it becomes the current one; its number.
    pub(crate) fn open(&mut self, now: Tick, who: usize, serves: Option<usize>) -> usize {
        if let Some(c) = self.conn {
            self.reset(c);
        }
        let c = self.conns.len();
        self.conns.push(Conn {
            initiator: who,
            closed_by: [false; 2],
            dead: false,
            told: [false; 2],
            serves: serves.unwrap_or(c),
        });
        self.conn = Some(c);
        self.note(now, c, who, TraceKind::Open);
        c
    }

    /// Put a copy of a TPKT sent by `from` on connection `c` on the wire,
    /// arriving `at`; recorded undelivered.
    pub(crate) fn send(&mut self, now: Tick, c: usize, from: usize, bytes: &[u8], info: PduInfo, at: Tick) {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.extend_from_slice(bytes);
        let trace = self.record.then(|| {
            self.trace.push(TraceItem {
                time: now,
                conn: c,
                from,
                kind: TraceKind::Pdu { bytes: b.clone(), info, delivered: false },
            });
            self.trace.len() - 1
        });
        self.wire.push_back(Flight::Pdu { conn: c, from, bytes: b, info, trace, at });
    }

    /// The PDU recorded at `trace` reached its peer.
    pub(crate) fn delivered(&mut self, trace: Option<usize>) {
        if let Some(TraceItem { kind: TraceKind::Pdu { delivered, .. }, .. }) =
            trace.and_then(|i| self.trace.get_mut(i))
        {
            *delivered = true;
        }
    }

    /// A TPKT buffer back to the pool.
    pub(crate) fn recycle(&mut self, bytes: Vec<u8>) {
        self.spare.push(bytes);
    }

    /// The endpoint that opened each connection.
    pub(crate) fn initiators(&self) -> Vec<usize> {
        self.conns.iter().map(|c| c.initiator).collect()
    }
}

#[derive(Debug, Clone, Copy)]
enum Work {
    Transport(TransportEvent),
    Timer(TimerId),
}

/// Two endpoints back to back. Endpoint 0 is "A", endpoint 1 is "B".
#[derive(Debug)]
pub struct Loopback<E> {
    /// The endpoints.
    pub ends: [E; 2],
    /// Virtual time.
    pub now: Tick,
    /// Added to `now` for each delivery.
    pub latency: Tick,
    timers: [[Option<Tick>; 2]; 2],
    net: Network,
    pending: VecDeque<(usize, Work)>,
    indications: Vec<(usize, Indication)>,
    out: Output,
    sent: u64,
    delivered: u64,
}

/// Host names given to the tracker's linker for endpoints 0 and 1.
pub const HOSTS: [&str; 2] = ["A", "B"];

impl<E: Endpoint> Loopback<E> {
    /// Two endpoints, recording a trace and the indications.
    pub fn new(a: E, b: E) -> Self {
        Loopback {
            ends: [a, b],
            now: 0,
            latency: 1_000_000,
            timers: [[None; 2]; 2],
            net: Network::new(),
            pending: VecDeque::new(),
            indications: Vec::new(),
            out: Output::new(),
            sent: 0,
            delivered: 0,
        }
    }

    /// Without a trace or indications (for benchmarks).
    #[must_use]
    pub fn unrecorded(mut self) -> Self {
        self.net.record = false;
        self
    }

    /// TPKTs sent and delivered so far.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.sent, self.delivered)
    }
    /// The trace.
    #[must_use]
    pub fn trace(&self) -> &Trace {
        &self.net.trace
    }
    /// Indications given to each endpoint, in order.
    #[must_use]
    pub fn indications(&self) -> &[(usize, Indication)] {
        &self.indications
    }
    /// Forget the indications recorded so far.
    pub fn clear_indications(&mut self) {
        self.indications.clear();
    }
    /// The current connection's number, if any.
    #[must_use]
    pub fn connection(&self) -> Option<usize> {
        self.net.conn
    }

    /// Give endpoint `who` an input directly (a request, typically).
    pub fn feed(&mut self, who: usize, input: Input<'_>) {
        self.out.clear();
        if let Some(e) = self.ends.get_mut(who) {
            e.input(self.now, input, &mut self.out);
        }
        self.apply(who);
    }

    /// Run `f` on endpoint `who` with the pump's clock and output, then
    /// carry out what it produced (e.g. `|mta, now, out| mta.handle(now,
    /// MtaInput::Submit(m), out)`).
    pub fn with(&mut self, who: usize, f: impl FnOnce(&mut E, Tick, &mut Output)) {
        self.out.clear();
        if let Some(e) = self.ends.get_mut(who) {
            f(e, self.now, &mut self.out);
        }
        self.apply(who);
    }

    fn apply(&mut self, who: usize) {
        let out = std::mem::take(&mut self.out);
        for a in &out.actions {
            match a {
                Action::Transmit(t) => {
                    let Some(c) = self.net.conn else { continue };
                    if self.net.conns.get(c).is_none_or(|i| i.closed_by[who]) {
                        continue;
                    }
                    self.sent += 1;
                    self.net.send(self.now, c, who, out.bytes(t), t.pdu, self.now);
                }
                Action::Indication(i) => {
                    if self.net.record {
                        self.indications.push((who, i.clone()));
                    }
                }
                Action::Connect => {
                    self.net.open(self.now, who, None);
                    self.pending.push_back((who, Work::Transport(TransportEvent::Connected)));
                    self.pending.push_back((1 - who, Work::Transport(TransportEvent::Incoming)));
                }
                Action::Disconnect => {
                    if let Some(c) = self.net.conn {
                        if let Some(i) = self.net.conns.get_mut(c) {
                            i.closed_by[who] = true;
                        }
                        self.net.wire.push_back(Flight::Fin { conn: c, from: who, at: self.now });
                    }
                }
                Action::SetTimer(id, t) => self.timers[who][*id as usize] = Some(*t),
                Action::CancelTimer(id) => self.timers[who][*id as usize] = None,
            }
        }
        self.out = out;
    }

    /// One step: a pending transport event or timer input, else the next
    /// delivery. `false` when there is nothing to do (timers aside).
    pub fn step(&mut self) -> bool {
        if let Some((who, w)) = self.pending.pop_front() {
            match w {
                Work::Transport(e) => self.feed(who, Input::Transport(e)),
                Work::Timer(t) => self.feed(who, Input::Timer(t)),
            }
            return true;
        }
        let Some(f) = self.net.wire.pop_front() else { return false };
        self.now = self.now.saturating_add(self.latency);
        match f {
            Flight::Pdu { conn, from, bytes, trace, .. } => {
                let to = 1 - from;
                if self.net.conn == Some(conn) && self.net.conns.get(conn).is_some_and(|i| !i.closed_by[to]) {
                    self.net.delivered(trace);
                    self.delivered += 1;
                    self.feed(to, Input::Received(&bytes));
                }
                self.net.recycle(bytes);
            }
            Flight::Fin { conn, from, .. } => {
                if self.net.conn == Some(conn) {
                    self.net.note(self.now, conn, from, TraceKind::Closed(CloseHow::Fin));
                    self.net.conn = None;
                    let to = 1 - from;
                    if self.net.conns.get(conn).is_some_and(|i| !i.closed_by[to]) {
                        self.feed(to, Input::Transport(TransportEvent::Lost));
                    }
                }
            }
            Flight::Lost { .. } => {}
        }
        true
    }

    /// Steps until nothing is in flight or pending (timers are not fired);
    /// returns the steps taken (at most `max`).
    pub fn run(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.step() {
            n += 1;
        }
        n
    }

    /// Steps until the next PDU to be delivered satisfies `pred(info, from)`
    /// (it is left undelivered) or nothing is left; `true` if found.
    pub fn run_until(&mut self, max: usize, mut pred: impl FnMut(&PduInfo, usize) -> bool) -> bool {
        for _ in 0..max {
            if self.pending.is_empty() {
                if let Some(Flight::Pdu { info, from, .. }) = self.net.wire.front() {
                    if pred(info, *from) {
                        return true;
                    }
                }
            }
            if !self.step() {
                return false;
            }
        }
        false
    }

    /// The earliest armed timer, if any: advance the clock to it and fire
    /// it. `false` if none is armed.
    pub fn fire_timer(&mut self) -> bool {
        let Some((t, who, id)) = earliest_timer(&self.timers) else { return false };
        self.timers[who][id] = None;
        self.now = self.now.max(t);
        self.pending.push_back((who, Work::Timer(TimerId::ALL[id])));
        true
    }

    /// Run, firing timers whenever the network is quiet, until nothing is
    /// left; returns the steps taken (at most `max`).
    pub fn settle(&mut self, max: usize) -> usize {
        let mut n = 0;
        loop {
            n += self.run(max.saturating_sub(n));
            if n >= max || !self.fire_timer() {
                return n;
            }
        }
    }

    /// The connection is lost (TCP RST): everything in flight on it is
    /// dropped and both endpoints are told.
    pub fn drop_connection(&mut self) {
        let Some(c) = self.net.conn else { return };
        self.net.reset(c);
        self.net.note(self.now, c, 0, TraceKind::Closed(CloseHow::Rst));
        for who in 0..2 {
            if self.net.conns.get(c).is_some_and(|i| !i.closed_by[who]) {
                self.pending.push_back((who, Work::Transport(TransportEvent::Lost)));
            }
        }
    }

    /// Which side (initiator or responder) of its connection endpoint
    /// `from` is.
    fn side(&self, conn: usize, from: usize) -> Sender {
        if self.net.conns.get(conn).is_some_and(|i| i.initiator == from) {
            Sender::Initiator
        } else {
            Sender::Responder
        }
    }

    /// The trace as short lines: `#conn A>B GTC` (`x` after a PDU that was
    /// not delivered), `#conn A open`, `#conn rst` / `#conn A fin`.
    #[must_use]
    pub fn transcript(&self) -> Vec<String> {
        self.net
            .trace
            .iter()
            .filter_map(|t| {
                let (a, b) = (HOSTS[t.from], HOSTS[1 - t.from]);
                Some(match &t.kind {
                    TraceKind::Open => format!("#{} {a} open", t.conn),
                    TraceKind::Pdu { info, delivered, .. } => {
                        if !info.eot {
                            return None;
                        }
                        format!("#{} {a}>{b} {}{}", t.conn, info.name(), if *delivered { "" } else { " x" })
                    }
                    TraceKind::Closed(CloseHow::Rst) => format!("#{} rst", t.conn),
                    TraceKind::Closed(h) => format!("#{} {a} {}", t.conn, close_name(*h)),
                })
            })
            .collect()
    }

    /// Decode every TPKT sent (delivered or not), per connection and
    /// direction, with the codec's stream decoder; the errors, if any.
    #[must_use]
    pub fn decode_errors(&self) -> Vec<String> {
        let mut decs: Vec<AssociationDecoder> = self.net.conns.iter().map(|_| AssociationDecoder::new()).collect();
        let mut errors = Vec::new();
        for (i, t) in self.net.trace.iter().enumerate() {
            if let TraceKind::Pdu { bytes, info, .. } = &t.kind {
                let side = self.side(t.conn, t.from);
                if let Some(d) = decs.get_mut(t.conn) {
                    d.push(side, bytes, |r| {
                        if let Err(e) = r.result {
                            errors.push(format!("trace {i} ({}): {e}", info.name()));
                        }
                    });
                }
            }
        }
        errors
    }

    /// Feed the delivered PDUs and the transport events to a fresh
    /// [`AssociationLinker`] (one association per connection, hosts
    /// [`HOSTS`]) and finish it.
    #[must_use]
    pub fn observe(&self) -> AssociationLinker {
        observe_trace(&self.net.trace, &self.net.initiators())
    }
}

/// The earliest armed timer of `timers[endpoint][TimerId]`: (deadline,
/// endpoint, timer index); the first in (endpoint, timer) order on a tie.
pub(crate) fn earliest_timer(timers: &[[Option<Tick>; 2]; 2]) -> Option<(Tick, usize, usize)> {
    let mut best: Option<(Tick, usize, usize)> = None;
    for (who, ts) in timers.iter().enumerate() {
        for (id, t) in ts.iter().enumerate() {
            if let Some(t) = *t {
                if best.is_none_or(|b| t < b.0) {
                    best = Some((t, who, id));
                }
            }
        }
    }
    best
}

/// How a close is written in transcripts.
pub(crate) const fn close_name(h: CloseHow) -> &'static str {
    match h {
        CloseHow::Fin => "fin",
        CloseHow::Rst => "rst",
        CloseHow::Eof => "eof",
        CloseHow::Gap => "gap",
    }
}

/// What [`Loopback::observe`] does, for any driver that records a
/// [`Trace`] (the simulator too): the delivered PDUs and the transport
/// events of each connection go, through [`observe::events`], to a fresh
/// [`AssociationLinker`], which is finished. `initiators[c]` is the
/// endpoint (0 or 1) that opened connection `c`.
#[must_use]
pub fn observe_trace(trace: &[TraceItem], initiators: &[usize]) -> AssociationLinker {
    let mut decs: Vec<AssociationDecoder> = Vec::new();
    observe_trace_with(trace, initiators, |_, conn, sender, bytes, events| {
        if decs.len() <= conn {
            decs.resize_with(conn + 1, AssociationDecoder::new);
        }
        decode_events(&mut decs[conn], sender, bytes, events);
    })
}

/// What one delivered TPKT (or chunk) means to the tracker: `bytes`
/// pushed through the connection's decoder, each decoded stack mapped by
/// [`observe::events`], each decode error a [`TurnEvent::Malformed`].
pub(crate) fn decode_events(d: &mut AssociationDecoder, sender: Sender, bytes: &[u8], events: &mut Vec<TurnEvent>) {
    d.push(sender, bytes, |r| match r.result {
        Ok(st) => observe::events(&st, |e| events.push(e)),
        Err(e) => events.push(TurnEvent::Malformed { detail: e.to_string() }),
    });
}

/// [`observe_trace`] with the decoding left to `decode(trace index,
/// connection, sender, bytes, events)`, which must append exactly what
/// [`decode_events`] on a decoder per connection (fresh at its `Open`)
/// would. The model check memoises it (the same TPKTs after the same
/// prefix decode the same way); everything else is shared.
pub(crate) fn observe_trace_with(
    trace: &[TraceItem],
    initiators: &[usize],
    mut decode: impl FnMut(usize, usize, Sender, &[u8], &mut Vec<TurnEvent>),
) -> AssociationLinker {
    let mut obs = TraceObserver::new();
    for (i, t) in trace.iter().enumerate() {
        obs.item(t, initiators, |conn, sender, bytes, events| decode(i, conn, sender, bytes, events));
    }
    obs.finish()
}

/// The linker fed one trace item at a time: what [`observe_trace_with`]
/// does in its loop, kept in a value so that a caller can stop part-way,
/// clone what it has and go on later (the model check judges a path from
/// the observation an earlier node of its search reached, instead of from
/// the start). Cloning it clones the linker.
#[derive(Clone)]
pub(crate) struct TraceObserver {
    linker: AssociationLinker,
    /// The linker's association per connection, in order of opening.
    ids: Vec<crate::tracker::AssocId>,
    /// Items observed so far: the next one's `seq`.
    seq: u64,
    /// Scratch for the events of one item (empty between items).
    events: Vec<TurnEvent>,
}

impl TraceObserver {
    /// Nothing observed yet.
    pub(crate) fn new() -> Self {
        TraceObserver {
            linker: AssociationLinker::new(TrackerConfig::default()),
            ids: Vec::new(),
            seq: 0,
            events: Vec::new(),
        }
    }

    /// Observe the next trace item `t`; `decode(connection, sender, bytes,
    /// events)` as for [`observe_trace_with`], `initiators` too (only the
    /// entries of connections opened so far are read).
    pub(crate) fn item(
        &mut self,
        t: &TraceItem,
        initiators: &[usize],
        decode: impl FnOnce(usize, Sender, &[u8], &mut Vec<TurnEvent>),
    ) {
        let side = |conn: usize, from: usize| {
            if initiators.get(conn) == Some(&from) {
                Sender::Initiator
            } else {
                Sender::Responder
            }
        };
        let seq = self.seq;
        self.seq += 1;
        let linker = &mut self.linker;
        match &t.kind {
            TraceKind::Open => {
                let id = linker.open(Some(HOSTS[t.from]));
                self.ids.push(id);
                linker.observe(
                    id,
                    &Observed { seq, time_ns: t.time, from: Side::Initiator, event: TurnEvent::TransportOpen },
                );
            }
            TraceKind::Pdu { bytes, delivered: true, .. } => {
                // Connections are numbered in order of opening: a PDU of a
                // connection whose Open is not (yet) recorded is skipped.
                let Some(id) = self.ids.get(t.conn).copied() else { return };
                let sender = side(t.conn, t.from);
                decode(t.conn, sender, bytes, &mut self.events);
                for event in self.events.drain(..) {
                    linker.observe(id, &Observed { seq, time_ns: t.time, from: observe::side(sender), event });
                }
            }
            TraceKind::Pdu { .. } => {}
            TraceKind::Closed(how) => {
                let Some(id) = self.ids.get(t.conn).copied() else { return };
                let from = observe::side(side(t.conn, t.from));
                linker.observe(
                    id,
                    &Observed { seq, time_ns: t.time, from, event: TurnEvent::TransportClosed { how: *how } },
                );
            }
        }
    }

    /// The end of the trace: the linker, finished.
    pub(crate) fn finish(mut self) -> AssociationLinker {
        self.linker.finish();
        self.linker
    }
}

impl Loopback<ReferenceMta> {
    /// Submit a message to MTA `who`.
    pub fn submit(&mut self, who: usize, apdu: crate::machine::Apdu) {
        self.with(who, |m, now, out| m.handle(now, MtaInput::Submit(apdu), out));
    }
}
