//! Implementations under test, seen from the tester: a byte pipe with
//! transport events. [`InProcessIut`] drives the reference MTA (or a flaw)
//! through bytes on virtual time; [`super::tcp::TcpIut`] talks to a real
//! RFC 1006 socket.
//!
//! The upper tester (how a case gives the IUT mail to send) is the calling
//! SS-user reference of the tester's CN: `TESTER;mail=100,8000/0001`
//! asks for two messages of 100 and 8000 content octets
//! ([`mail_directive`]). [`MtaHost`] reads it with the codec (never from
//! raw bytes) and is shared by the in-process IUT and `rtse serve`.

use crate::flaw::Flaw;
use crate::machine::{Action, Apdu, Input, Output, Tick, TimerId, TransportEvent};
use crate::mta::{MtaConfig, MtaInput, ReferenceMta};
use crate::tracker::{CloseHow, TurnEvent};
use rtse_codec::presentation::Mode;
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::collections::VecDeque;
use std::time::Duration;

/// Something the IUT did, as the tester sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IutEvent {
    /// Octets on the current transport (any chunking).
    Bytes(Vec<u8>),
    /// The IUT ended the current transport.
    Closed(CloseHow),
    /// The IUT opened a transport connection to the tester (it is the
    /// association-initiator, or recovering).
    Connect,
}

/// How the tester ends a transport connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropHow {
    /// Orderly close (FIN).
    Fin,
    /// Reset (RST: SO_LINGER 0, then close).
    Rst,
    /// Half-close: the tester shuts down its sending side (FIN) and goes on
    /// reading, so it sees what the IUT does on the end of its input (it
    /// must take the association as lost and close its side).
    HalfClose,
    /// Stall: the tester stops reading and writing without closing (a dead
    /// peer, a pulled cable); the connection stays open until the case ends.
    Stall,
}

/// An adapter fault (not a verdict on the IUT): gives `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IutError(pub String);

impl std::fmt::Display for IutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the tester needs of an implementation under test.
pub trait Iut {
    /// Short description (`reference`, `flaw:ignores-please`, `tcp://...`).
    fn name(&self) -> String;
    /// A fresh instance for one case: the IUT's role and, as initiator, its
    /// mail (as responder, mail comes with the CN, see [`mail_directive`]).
    fn start(&mut self, initiator: Option<(&[u32], bool)>, seed: u64) -> Result<(), IutError>;
    /// Open a transport connection to the IUT.
    fn connect(&mut self) -> Result<(), IutError>;
    /// Accept the IUT's pending connection (after [`IutEvent::Connect`]).
    fn accept(&mut self) -> Result<(), IutError>;
    /// Send octets on the current transport.
    fn send(&mut self, bytes: &[u8]) -> Result<(), IutError>;
    /// The next event within `within`; `None` when the bound passes first.
    fn next(&mut self, within: Duration) -> Result<Option<IutEvent>, IutError>;
    /// End the current transport.
    fn drop_transport(&mut self, how: DropHow) -> Result<(), IutError>;
    /// Time elapsed in the case, in ns (virtual in-process).
    fn now_ns(&self) -> u64;
    /// End the case (release resources).
    fn finish(&mut self) {}
    /// Distinguishes this case's connection identifiers from earlier runs
    /// against the same long-lived IUT (0 in process: deterministic bytes).
    fn nonce(&self) -> u64 {
        0
    }
}

/// The upper-tester directive carried in a calling SS-user reference.
#[must_use]
pub fn mail_directive(calling: &[u8]) -> Vec<u32> {
    let s = String::from_utf8_lossy(calling);
    let Some(i) = s.find(";mail=") else { return Vec::new() };
    s[i + 6..]
        .split(['/', ';'])
        .next()
        .unwrap_or("")
        .split(',')
        .filter_map(|x| x.parse::<u32>().ok())
        .map(|n| n.min(1 << 20))
        .take(64)
        .collect()
}

/// A message of `len` content octets labelled `U<n>`.
#[must_use]
pub fn upper_message(n: usize, len: u32) -> Apdu {
    let content: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    Apdu::message(&format!("U{n:04}"), &content)
}

/// A reference MTA plus the upper tester: reads the mail directive of each
/// fresh CN it receives (with the codec) and submits that mail first.
#[derive(Debug)]
pub struct MtaHost {
    pub mta: ReferenceMta,
    dec: Option<AssociationDecoder>,
    submitted: usize,
}

impl MtaHost {
    /// Recovery timing used by test hosts: quick retries, a long wait.
    pub fn config(name: &str, mode: Mode, flaw: Option<Flaw>, opener: bool) -> MtaConfig {
        let mut c = MtaConfig::new(name, opener).with_flaw(flaw);
        c.machine.mode = mode;
        c.machine.recovery.retry_delay = 200_000_000;
        c.machine.recovery.wait = 20_000_000_000;
        c
    }

    /// A host for `cfg`.
    #[must_use]
    pub fn new(cfg: MtaConfig) -> Self {
        MtaHost { mta: ReferenceMta::new(cfg), dec: None, submitted: 0 }
    }

    /// Submit a message directly.
    pub fn submit(&mut self, now: Tick, len: u32, out: &mut Output) {
        self.submitted += 1;
        let m = upper_message(self.submitted, len);
        self.mta.handle(now, MtaInput::Submit(m), out);
    }

    /// A transport event; an incoming connection starts looking for a CN.
    pub fn transport(&mut self, now: Tick, ev: TransportEvent, out: &mut Output) {
        if ev == TransportEvent::Incoming {
            self.dec = Some(AssociationDecoder::new());
        }
        self.mta.handle(now, MtaInput::Machine(Input::Transport(ev)), out);
    }

    /// Bytes from the peer.
    pub fn received(&mut self, now: Tick, bytes: &[u8], out: &mut Output) {
        if let Some(d) = self.dec.as_mut() {
            let mut mail = None;
            let mut done = false;
            d.push(Sender::Initiator, bytes, |r| {
                let Ok(st) = r.result else { return };
                crate::observe::events(&st, |e| {
                    if let TurnEvent::Connect(c) = e {
                        done = true;
                        if c.recover.is_none() {
                            mail = c.conn_ref.map(|r| mail_directive(&r.calling));
                        }
                    }
                });
            });
            if done {
                self.dec = None;
            }
            for len in mail.unwrap_or_default() {
                self.submit(now, len, out);
            }
        }
        self.mta.handle(now, MtaInput::Machine(Input::Received(bytes)), out);
    }

    /// A timer.
    pub fn timer(&mut self, now: Tick, t: TimerId, out: &mut Output) {
        self.mta.handle(now, MtaInput::Machine(Input::Timer(t)), out);
    }
}

/// The reference MTA or a flaw, in process, on virtual time: every byte
/// goes through the codec both ways, the tester's octets are delivered in
/// seeded chunks (so TPKT reassembly is exercised).
#[derive(Debug)]
pub struct InProcessIut {
    mode: Mode,
    flaw: Option<Flaw>,
    host: Option<MtaHost>,
    out: Output,
    now: Tick,
    timers: [Option<Tick>; 2],
    events: VecDeque<IutEvent>,
    /// The current transport is up (from the IUT's side).
    up: bool,
    pending_connect: bool,
    rng: u64,
}

impl InProcessIut {
    /// The reference MTA (`None`) or a flaw, in `mode`.
    #[must_use]
    pub fn new(mode: Mode, flaw: Option<Flaw>) -> Self {
        InProcessIut {
            mode,
            flaw,
            host: None,
            out: Output::new(),
            now: 0,
            timers: [None; 2],
            events: VecDeque::new(),
            up: false,
            pending_connect: false,
            rng: 1,
        }
    }

    fn host(&mut self) -> Result<&mut MtaHost, IutError> {
        self.host.as_mut().ok_or_else(|| IutError("IUT not started".into()))
    }

    fn drain(&mut self) {
        let out = std::mem::take(&mut self.out);
        for a in &out.actions {
            match a {
                Action::Transmit(t) => {
                    if self.up {
                        let b = out.bytes(t).to_vec();
                        match self.events.back_mut() {
                            Some(IutEvent::Bytes(prev)) => prev.extend_from_slice(&b),
                            _ => self.events.push_back(IutEvent::Bytes(b)),
                        }
                    }
                }
                Action::Disconnect => {
                    if self.up {
                        self.up = false;
                        self.events.push_back(IutEvent::Closed(CloseHow::Fin));
                    }
                }
                Action::Connect => {
                    self.pending_connect = true;
                    self.events.push_back(IutEvent::Connect);
                }
                Action::SetTimer(id, at) => self.timers[*id as usize] = Some(*at),
                Action::CancelTimer(id) => self.timers[*id as usize] = None,
                Action::Indication(_) => {}
            }
        }
        self.out = out;
        self.out.clear();
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: deterministic chunking from the case seed.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Iut for InProcessIut {
    fn name(&self) -> String {
        match self.flaw {
            None => "reference".into(),
            Some(f) => format!("flaw:{f}"),
        }
    }

    fn start(&mut self, initiator: Option<(&[u32], bool)>, seed: u64) -> Result<(), IutError> {
        let opener = initiator.is_some();
        let mut cfg = MtaHost::config("IUT", self.mode, self.flaw, opener);
        if let Some((_, responder_turn)) = initiator {
            if responder_turn {
                cfg.machine.initial_turn = crate::machine::Role::Responder;
            }
        }
        self.host = Some(MtaHost::new(cfg));
        self.now = 0;
        self.timers = [None; 2];
        self.events.clear();
        self.up = false;
        self.pending_connect = false;
        self.rng = seed | 1;
        self.out.clear();
        if let Some((mail, _)) = initiator {
            let now = self.now;
            let mut out = std::mem::take(&mut self.out);
            for &m in mail {
                self.host()?.submit(now, m, &mut out);
            }
            self.out = out;
            self.drain();
        }
        Ok(())
    }

    fn connect(&mut self) -> Result<(), IutError> {
        if self.up {
            return Err(IutError("connect: a transport connection is already open".into()));
        }
        self.up = true;
        let now = self.now;
        let mut out = std::mem::take(&mut self.out);
        self.host()?.transport(now, TransportEvent::Incoming, &mut out);
        self.out = out;
        self.drain();
        Ok(())
    }

    fn accept(&mut self) -> Result<(), IutError> {
        if !self.pending_connect {
            return Err(IutError("accept: the IUT is not connecting".into()));
        }
        self.pending_connect = false;
        self.up = true;
        let now = self.now;
        let mut out = std::mem::take(&mut self.out);
        self.host()?.mta.handle(now, MtaInput::Machine(Input::Transport(TransportEvent::Connected)), &mut out);
        self.out = out;
        self.drain();
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), IutError> {
        if !self.up {
            // The IUT closed: like a write after the peer's FIN, dropped.
            return Ok(());
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let cut = if rest.len() > 1 && self.next_rand() % 4 == 0 {
                1 + (self.next_rand() as usize % (rest.len() - 1))
            } else {
                rest.len()
            };
            let (a, b) = rest.split_at(cut);
            let now = self.now;
            let mut out = std::mem::take(&mut self.out);
            self.host()?.received(now, a, &mut out);
            self.out = out;
            self.drain();
            rest = b;
            if !self.up {
                break;
            }
        }
        Ok(())
    }

    fn next(&mut self, within: Duration) -> Result<Option<IutEvent>, IutError> {
        let deadline = self.now.saturating_add(within.as_nanos() as u64);
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            let due = TimerId::ALL.into_iter().filter_map(|t| self.timers[t as usize].map(|at| (at, t))).min();
            match due {
                Some((at, t)) if at <= deadline => {
                    self.now = self.now.max(at);
                    self.timers[t as usize] = None;
                    if self.pending_connect {
                        // A connection attempt nobody accepted fails.
                        self.pending_connect = false;
                        let now = self.now;
                        let mut out = std::mem::take(&mut self.out);
                        self.host()?.transport(now, TransportEvent::Lost, &mut out);
                        self.out = out;
                    }
                    let now = self.now;
                    let mut out = std::mem::take(&mut self.out);
                    self.host()?.timer(now, t, &mut out);
                    self.out = out;
                    self.drain();
                }
                _ => {
                    self.now = deadline;
                    return Ok(None);
                }
            }
        }
    }

    fn drop_transport(&mut self, how: DropHow) -> Result<(), IutError> {
        match how {
            DropHow::Stall => {
                // The IUT sees nothing; what it sends is never read.
                self.up = false;
                self.events.retain(|e| !matches!(e, IutEvent::Bytes(_) | IutEvent::Closed(_)));
                return Ok(());
            }
            DropHow::HalfClose => {
                // The end of its input is a loss to the IUT; its driver then
                // closes its side (as `rtse serve` does), which the tester sees.
                if self.up {
                    let now = self.now;
                    let mut out = std::mem::take(&mut self.out);
                    self.host()?.transport(now, TransportEvent::Lost, &mut out);
                    self.out = out;
                    self.drain();
                    if self.up {
                        self.up = false;
                        self.events.push_back(IutEvent::Closed(CloseHow::Fin));
                    }
                }
                return Ok(());
            }
            DropHow::Fin | DropHow::Rst => {}
        }
        // FIN and RST look the same to the machine: the transport is lost.
        if self.up {
            self.up = false;
            let now = self.now;
            let mut out = std::mem::take(&mut self.out);
            self.host()?.transport(now, TransportEvent::Lost, &mut out);
            self.out = out;
            self.drain();
        }
        // Whatever the IUT sent after the drop never arrives.
        self.events.retain(|e| !matches!(e, IutEvent::Bytes(_) | IutEvent::Closed(_)));
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_directive_is_read_from_the_calling_reference() {
        assert_eq!(mail_directive(b"TESTER;mail=100,8000/0001"), vec![100, 8000]);
        assert_eq!(mail_directive(b"TESTER/0001"), Vec::<u32>::new());
        assert_eq!(mail_directive(b"T;mail=x,5"), vec![5]);
        assert_eq!(mail_directive(b"T;mail=99999999999"), Vec::<u32>::new());
        assert_eq!(mail_directive(b"T;mail=4000000"), vec![1 << 20]);
    }
}
