//! The reference MTA: a [`Machine`] plus a queue of messages to send and a
//! record of messages delivered, with the Turn policy of a P1 MTA. Sans-IO
//! like the machine: [`ReferenceMta::handle`] takes an [`MtaInput`] and
//! appends the machine's actions (including every indication, so a driver
//! sees deliveries and confirmations) to an [`Output`].
//!
//! Policy (re-evaluated after every input, until nothing more is to do):
//! * answers an RT-OPEN indication by accepting it;
//! * holding the Turn, idle, with mail: RT-TRANSFER of the oldest message;
//! * holding the Turn and asked (RT-TURN-PLEASE): gives it (RT-TURN-GIVE)
//!   as soon as no transfer is in progress and either its queue is empty
//!   or it has sent [`MtaConfig::max_burst`] messages since it got the
//!   Turn (fairness: both directions progress);
//! * not holding the Turn, with mail: asks for it once (RT-TURN-PLEASE with
//!   [`MtaConfig::please_priority`]), again after the next Turn move or
//!   recovery;
//! * no association, with mail, and [`MtaConfig::opener`]: RT-OPEN;
//! * backlog: when a submission brings its queue to a multiple of
//!   [`MtaConfig::backlog_threshold`] (default 50), it aborts whatever
//!   association it has and opens a fresh one, as real MTAs do.
//!
//! A positive RT-TRANSFER confirmation removes the message from the queue;
//! a negative one leaves it at the front, to be sent again (on this or a
//! fresh association). Deliveries are counted per label, so a duplicate is
//! visible ([`ReferenceMta::delivered`]).

use crate::flaw::Flaw;
use crate::machine::{Apdu, Config, Dialogue, Indication, Input, Machine, Notice, Output, Phase, Request, Role, Tick};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Settings of a reference MTA.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MtaConfig {
    /// The machine's configuration (its `flaw` is the MTA's flaw).
    pub machine: Config,
    /// Opens an association when it has mail and none exists.
    pub opener: bool,
    /// Queue length at which a fresh association is forced.
    pub backlog_threshold: usize,
    /// Priority of its RT-TURN-PLEASE.
    pub please_priority: i64,
    /// Transfers before it gives the Turn to a waiting peer.
    pub max_burst: u32,
}

impl MtaConfig {
    /// Defaults: normal mode, twa, checkpointSize 1, window 3, threshold
    /// 50, please priority 1, burst 8.
    pub fn new(name: &str, opener: bool) -> Self {
        MtaConfig { machine: Config::new(name), opener, backlog_threshold: 50, please_priority: 1, max_burst: 8 }
    }
    /// With a flaw (`None`: the reference).
    #[must_use]
    pub fn with_flaw(mut self, flaw: Option<Flaw>) -> Self {
        self.machine.flaw = flaw;
        self
    }
}

/// Inputs of an MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtaInput<'a> {
    /// Something for the machine (bytes, transport, timer, or a request
    /// made directly).
    Machine(Input<'a>),
    /// A message to send.
    Submit(Apdu),
}

/// A machine, a queue and a delivery record. `Clone + Eq + Hash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferenceMta {
    machine: Machine,
    flaw: Option<Flaw>,
    opener: bool,
    threshold: usize,
    please_priority: i64,
    max_burst: u32,
    queue: VecDeque<Apdu>,
    /// The front of the queue is being transferred.
    in_flight: bool,
    please_sent: bool,
    please_received: bool,
    burst: u32,
    answer_open: bool,
    /// A fresh association was decided (abort, then open).
    fresh: bool,
    /// Flaw::NoRecovery: after a loss, reopen only at the threshold.
    lost_waiting: bool,
    delivered: BTreeMap<Arc<str>, u32>,
    deliveries: u64,
    confirmed: u64,
    fresh_opens: u32,
}

impl ReferenceMta {
    /// An MTA with no association and an empty queue.
    #[must_use]
    pub fn new(cfg: MtaConfig) -> Self {
        ReferenceMta {
            flaw: cfg.machine.flaw,
            machine: Machine::new(cfg.machine),
            opener: cfg.opener,
            threshold: cfg.backlog_threshold.max(1),
            please_priority: cfg.please_priority,
            max_burst: cfg.max_burst.max(1),
            queue: VecDeque::new(),
            in_flight: false,
            please_sent: false,
            please_received: false,
            burst: 0,
            answer_open: false,
            fresh: false,
            lost_waiting: false,
            delivered: BTreeMap::new(),
            deliveries: 0,
            confirmed: 0,
            fresh_opens: 0,
        }
    }

    /// The protocol machine.
    #[must_use]
    pub fn machine(&self) -> &Machine {
        &self.machine
    }
    /// Its flaw.
    #[must_use]
    pub fn flaw(&self) -> Option<Flaw> {
        self.flaw
    }
    /// Messages not yet confirmed, oldest first.
    pub fn queue(&self) -> impl Iterator<Item = &Apdu> + '_ {
        self.queue.iter()
    }
    /// Number of messages not yet confirmed.
    #[must_use]
    pub fn backlog(&self) -> usize {
        self.queue.len()
    }
    /// Labels delivered to this MTA and how many times each.
    #[must_use]
    pub fn delivered(&self) -> &BTreeMap<Arc<str>, u32> {
        &self.delivered
    }
    /// RT-TRANSFER indications received.
    #[must_use]
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }
    /// Positive RT-TRANSFER confirmations received.
    #[must_use]
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }
    /// Fresh associations forced by the backlog.
    #[must_use]
    pub fn fresh_opens(&self) -> u32 {
        self.fresh_opens
    }

    fn flawed(&self, f: Flaw) -> bool {
        self.flaw == Some(f)
    }

    /// Process one input, then apply the policy until it has nothing more
    /// to ask of the machine.
    pub fn handle(&mut self, now: Tick, input: MtaInput<'_>, out: &mut Output) {
        let mut scan = out.actions.len();
        match input {
            MtaInput::Machine(i) => self.machine.handle(now, i, out),
            MtaInput::Submit(a) => {
                self.queue.push_back(a);
                if self.queue.len() % self.threshold == 0 {
                    self.fresh = true;
                    self.lost_waiting = false;
                }
            }
        }
        // Each accepted request changes the machine's state; a refused one
        // ends the loop. The bound is a guard, never reached in practice.
        for _ in 0..32 {
            let end = out.actions.len();
            self.absorb(out.actions.get(scan..end).unwrap_or(&[]));
            scan = end;
            let Some(r) = self.next_request() else { break };
            if !self.machine.request(now, r, out) {
                break;
            }
        }
        let end = out.actions.len();
        self.absorb(out.actions.get(scan..end).unwrap_or(&[]));
    }

    fn absorb(&mut self, actions: &[crate::machine::Action]) {
        use crate::machine::Action;
        for a in actions {
            let Action::Indication(i) = a else { continue };
            match i {
                Indication::OpenInd => {
                    // A fresh association: a please sent on an older one
                    // (ended by our own abort, which indicates nothing to
                    // us) does not carry over.
                    self.answer_open = true;
                    self.reset_turn_state();
                }
                Indication::OpenCnf(Ok(())) => self.reset_turn_state(),
                Indication::OpenCnf(Err(_)) => self.in_flight = false,
                Indication::TransferInd { label, .. } => {
                    let key = label.clone().unwrap_or_else(|| Arc::from("<unlabelled>"));
                    *self.delivered.entry(key).or_insert(0) += 1;
                    self.deliveries += 1;
                }
                Indication::TransferCnf { label, ok } => {
                    if *ok && self.in_flight && self.queue.front().is_some_and(|f| f.label == *label) {
                        self.queue.pop_front();
                        self.confirmed += 1;
                    }
                    self.in_flight = false;
                }
                Indication::TurnPleaseInd { .. } => self.please_received = true,
                Indication::TurnGiveInd => {
                    self.please_sent = false;
                    self.burst = 0;
                }
                Indication::Notice(Notice::Recovered { .. }) => self.reset_turn_state(),
                Indication::Notice(Notice::Lost { .. }) => {
                    self.reset_turn_state();
                    if self.flawed(Flaw::NoRecovery) {
                        self.lost_waiting = true;
                    }
                }
                Indication::PAbortInd { .. } | Indication::UAbortInd | Indication::CloseInd | Indication::CloseCnf => {
                    self.reset_turn_state();
                    self.in_flight = false;
                }
                _ => {}
            }
        }
    }

    /// Pleases and bursts do not survive a connection.
    fn reset_turn_state(&mut self) {
        self.please_sent = false;
        self.please_received = false;
        self.burst = 0;
    }

    fn next_request(&mut self) -> Option<Request> {
        if self.answer_open {
            self.answer_open = false;
            return Some(Request::OpenResponse(Ok(())));
        }
        let phase = self.machine.phase();
        if self.fresh {
            if phase == Phase::Idle {
                self.fresh = false;
                self.fresh_opens += 1;
                return Some(Request::Open);
            }
            return Some(Request::UAbort);
        }
        let has_mail = !self.queue.is_empty();
        match phase {
            Phase::Idle if has_mail && self.opener && !self.lost_waiting => Some(Request::Open),
            Phase::Open => self.open_policy(has_mail),
            _ => None,
        }
    }

    fn open_policy(&mut self, has_mail: bool) -> Option<Request> {
        let m = &self.machine;
        let twa = m.dialogue() == Dialogue::Twa;
        let transferring = m.sending().is_some();
        if m.holds_turn() {
            let asked = self.please_received && twa && !self.flawed(Flaw::IgnoresPlease);
            if transferring {
                // Flaw::GtcDuringActivity: gives at once, mid-transfer.
                if asked && self.flawed(Flaw::GtcDuringActivity) {
                    self.please_received = false;
                    return Some(Request::TurnGive);
                }
                return None;
            }
            if asked && (!has_mail || self.burst >= self.max_burst) {
                self.please_received = false;
                self.burst = 0;
                return Some(Request::TurnGive);
            }
            if has_mail && !m.receiving() {
                return self.transfer();
            }
            return None;
        }
        if !has_mail || transferring || m.gtc_pending() {
            return None;
        }
        // Flaw::SendsWithoutTurn: sends anyway.
        if self.flawed(Flaw::SendsWithoutTurn) && !m.receiving() {
            return self.transfer();
        }
        if twa && !self.please_sent && !(m.role() == Role::Responder && m.dialogue() == Dialogue::Monologue) {
            self.please_sent = true;
            return Some(Request::TurnPlease(self.please_priority));
        }
        None
    }

    fn transfer(&mut self) -> Option<Request> {
        let front = self.queue.front()?.clone();
        self.in_flight = true;
        self.burst += 1;
        Some(Request::Transfer(front))
    }
}
