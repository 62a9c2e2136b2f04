//! The tester: runs one case's script against an [`Iut`] and gives a
//! verdict.
//!
//! Every PDU the tester sends is built with [`crate::synth::Pdus`] (the
//! codec's emitters) except `raw` ones; every octet either side sends goes
//! through the codec's [`AssociationDecoder`] and [`crate::observe`] into
//! one [`AssociationLinker`] (one association per transport connection,
//! recoveries linked), so the invariants are the tracker's, checked on
//! what was on the wire.
//!
//! # Verdicts (ISO 9646 plus two)
//!
//! * `pass`: every step as scripted and no invariant broken by the IUT;
//! * `fail`: the first deviation (kind `timeout`: nothing within the bound;
//!   `wrong-answer`: something else arrived; `closed`: the IUT closed;
//!   `malformed`: it sent undecodable octets; `invariant`: a tracker
//!   anomaly attributed to the IUT);
//! * `inconclusive`: a preamble step (an `open`) did not go through, so the
//!   test purpose was not reached;
//! * `error`: the adapter failed (I/O), not the IUT;
//! * `skipped`: the IUT lacks a capability the case needs.
//!
//! Anomalies attributed to the tester's own side (a case that sends data
//! without the Turn on purpose) never fail a case.

use super::case::{Case, ModeNeed, RoleNeed, StepSpec};
use super::iut::{DropHow, Iut, IutError, IutEvent};
use crate::synth::{Ac, Cn, ConnId, Pdus};
use crate::tracker::{AssocId, AssociationLinker, CloseHow, Invariant, Observed, Side, TrackerConfig, TurnEvent};
use rtse_codec::presentation::Mode;
use rtse_codec::rtse::RefuseReason;
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::collections::VecDeque;
use std::time::Duration;

/// ISO 9646 verdicts plus `error` and `skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    Error,
    Skipped,
}

impl Verdict {
    /// Lower-case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive, Verdict::Error, Verdict::Skipped]
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown verdict {s:?} (pass, fail, inconclusive, error, skipped)"))
    }
}

/// What the IUT can do (from a declaration, or built in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub mode: Mode,
    pub twa: bool,
    pub monologue: bool,
    /// Accepts recovery (else refuses it).
    pub recovery: bool,
    pub responder: bool,
    pub initiator: bool,
}

impl Capabilities {
    /// Everything, in `mode` (the in-process reference MTA).
    #[must_use]
    pub fn all(mode: Mode) -> Self {
        Capabilities { mode, twa: true, monologue: true, recovery: true, responder: true, initiator: true }
    }

    /// Why `case` does not apply, if it does not.
    #[must_use]
    pub fn lacks(&self, case: &Case) -> Option<String> {
        let n = &case.needs;
        match (n.mode, self.mode) {
            (ModeNeed::Normal, Mode::X410) => return Some("needs normal mode".into()),
            (ModeNeed::X410, Mode::Normal) => return Some("needs X.410-1984 mode".into()),
            _ => {}
        }
        if n.role == RoleNeed::Initiator && !self.initiator {
            return Some("needs the IUT as association-initiator".into());
        }
        if n.role == RoleNeed::Responder && !self.responder {
            return Some("needs the IUT as association-responder".into());
        }
        if n.twa && !self.twa {
            return Some("needs two-way-alternate dialogue".into());
        }
        if n.monologue && !self.monologue {
            return Some("needs monologue dialogue".into());
        }
        match n.recovery {
            Some(true) if !self.recovery => Some("needs recovery".into()),
            Some(false) if self.recovery => Some("needs an IUT that refuses recovery".into()),
            _ => None,
        }
    }
}

/// Why a case did not pass: the first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailKind {
    /// Nothing arrived within the bound.
    Timeout,
    /// Something other than what the script allows arrived.
    WrongAnswer,
    /// The IUT closed the transport where it should not have.
    Closed,
    /// The IUT sent octets the codec cannot decode.
    Malformed,
    /// A tracker invariant broken by the IUT.
    Invariant,
    /// A preamble step failed (verdict inconclusive).
    Preamble,
    /// The adapter failed (verdict error).
    Adapter,
    /// A capability is missing (verdict skipped).
    Capability,
    /// The case script is invalid (verdict error).
    Script,
}

/// One case's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub id: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seed: u64,
    /// The PDU trace (both directions, transport events).
    pub trace: Vec<TraceLine>,
    /// Case time (virtual in-process), ns.
    pub time_ns: u64,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceLine {
    pub time_ns: u64,
    /// Transport connection number (0-based).
    pub conn: usize,
    /// `tester` or `iut`.
    pub from: &'static str,
    /// `GTC`, `CN setting=15 recover`, `T-OPEN`, `FIN` ...
    pub what: String,
}

impl std::fmt::Display for TraceLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let arrow = if self.from == "tester" { "tester -> iut" } else { "iut -> tester" };
        write!(f, "{:>10.3}ms #{} {arrow}  {}", self.time_ns as f64 / 1e6, self.conn, self.what)
    }
}

/// A stable seed for a case id (FNV-1a), so runs are reproducible.
#[must_use]
pub fn seed_of(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Parse `500ms`, `2s`, `1.5s`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("bad duration {s:?} (e.g. 500ms, 2s)"));
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("bad duration {s:?}"))?;
    if !(0.0..=600.0).contains(&(v * mul)) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

fn setting_of(s: &str) -> Result<Option<u8>, String> {
    match s {
        "initiator" => Ok(Some(0x00)),
        "responder" => Ok(Some(0x15)),
        "choice" => Ok(Some(0x2A)),
        "absent" => Ok(None),
        hex => u8::from_str_radix(hex, 16).map(Some).map_err(|_| format!("bad token setting {s:?}")),
    }
}

/// A PDU received from the IUT, decoded.
#[derive(Debug, Clone)]
enum Got {
    Pdu { name: String, events: Vec<TurnEvent> },
    Malformed(String),
    Closed,
    Connect,
}

impl Got {
    fn name(&self) -> String {
        match self {
            Got::Pdu { name, .. } => name.clone(),
            Got::Malformed(e) => format!("undecodable octets ({e})"),
            Got::Closed => "close".into(),
            Got::Connect => "connect".into(),
        }
    }
}

struct Conn {
    dec: AssociationDecoder,
    id: AssocId,
    tester: Sender,
    closed: bool,
    closed_by_iut: bool,
}

struct Failure {
    kind: FailKind,
    reason: String,
}

fn fail(kind: FailKind, reason: impl Into<String>) -> Failure {
    Failure { kind, reason: reason.into() }
}

impl From<IutError> for Failure {
    fn from(e: IutError) -> Self {
        fail(FailKind::Adapter, e.0)
    }
}

/// The tester's state for one case.
struct Tester<'a> {
    iut: &'a mut dyn Iut,
    pdus: Pdus,
    linker: AssociationLinker,
    conns: Vec<Conn>,
    inbox: VecDeque<Got>,
    trace: Vec<TraceLine>,
    seq: u64,
    mail: String,
    /// CNs sent (for connection identifiers).
    cns: u32,
    /// The tester's last CN connection identifier (what a recovery quotes).
    last_conn: Option<ConnId>,
    /// Activity identifiers the tester used.
    activities: u64,
    /// checkpointSize and windowSize of the tester's last CN.
    proposed: Option<(i64, i64)>,
    /// The connection the tester's last recovery quoted.
    recovered_from: Option<ConnId>,
    /// The IUT's last CN connection identifier (what its recovery quotes).
    iut_conn: Option<ConnId>,
}

const DEFAULT_WITHIN: Duration = Duration::from_secs(1);

impl<'a> Tester<'a> {
    fn conn(&mut self) -> Option<&mut Conn> {
        self.conns.last_mut().filter(|c| !c.closed)
    }

    fn open_conn(&mut self, tester: Sender) {
        let id = self.linker.open(Some(if tester == Sender::Initiator { "tester" } else { "iut" }));
        let now = self.iut.now_ns();
        self.seq += 1;
        self.linker.observe(
            id,
            &Observed { seq: self.seq, time_ns: now, from: Side::Initiator, event: TurnEvent::TransportOpen },
        );
        self.conns.push(Conn { dec: AssociationDecoder::new(), id, tester, closed: false, closed_by_iut: false });
        let n = self.conns.len() - 1;
        self.trace.push(TraceLine {
            time_ns: now,
            conn: n,
            from: if tester == Sender::Initiator { "tester" } else { "iut" },
            what: "T-OPEN".into(),
        });
    }

    fn close_conn(&mut self, by_tester: bool, how: CloseHow) {
        let now = self.iut.now_ns();
        let n = self.conns.len().saturating_sub(1);
        let Some(c) = self.conns.last_mut().filter(|c| !c.closed) else { return };
        c.closed = true;
        c.closed_by_iut = !by_tester;
        let from = crate::observe::side(if by_tester { c.tester } else { c.tester.peer() });
        self.seq += 1;
        let id = c.id;
        self.linker
            .observe(id, &Observed { seq: self.seq, time_ns: now, from, event: TurnEvent::TransportClosed { how } });
        let what = match how {
            CloseHow::Rst => "RST",
            _ => "FIN",
        };
        self.trace.push(TraceLine {
            time_ns: now,
            conn: n,
            from: if by_tester { "tester" } else { "iut" },
            what: what.into(),
        });
    }

    /// Decode octets of one direction, observe them, return what completed.
    fn absorb(&mut self, from_tester: bool, bytes: &[u8]) -> Vec<Got> {
        let now = self.iut.now_ns();
        let n = self.conns.len().saturating_sub(1);
        let Some(c) = self.conns.last_mut() else { return Vec::new() };
        let sender = if from_tester { c.tester } else { c.tester.peer() };
        let mut got = Vec::new();
        c.dec.push(sender, bytes, |r| match r.result {
            Ok(st) => {
                let name = match (&st.session, &st.tpdu) {
                    (Some(_), _) => st.spdu_kinds().last().map_or("?", |k| k.name()).to_owned(),
                    (None, Some(rtse_codec::cotp::Tpdu::Dt(_))) => return, // part of a TSDU
                    (None, Some(t)) => tpdu_name(t).to_owned(),
                    (None, None) => return,
                };
                let mut events = Vec::new();
                crate::observe::events(&st, |e| events.push(e));
                got.push(Got::Pdu { name, events });
            }
            Err(e) => got.push(Got::Malformed(e.to_string())),
        });
        let id = c.id;
        let from = crate::observe::side(sender);
        for g in &got {
            let evs: Vec<TurnEvent> = match g {
                Got::Pdu { events, .. } => events.clone(),
                Got::Malformed(e) => vec![TurnEvent::Malformed { detail: e.clone() }],
                _ => Vec::new(),
            };
            for event in evs {
                self.seq += 1;
                self.linker.observe(id, &Observed { seq: self.seq, time_ns: now, from, event });
            }
            self.trace.push(TraceLine {
                time_ns: now,
                conn: n,
                from: if from_tester { "tester" } else { "iut" },
                what: describe(g),
            });
        }
        got
    }

    /// Pull what the IUT has produced (waiting at most `within`) into the
    /// inbox; false when nothing arrived.
    fn pull(&mut self, within: Duration) -> Result<bool, Failure> {
        match self.iut.next(within)? {
            None => Ok(false),
            Some(IutEvent::Bytes(b)) => {
                let got = self.absorb(false, &b);
                self.inbox.extend(got);
                Ok(true)
            }
            Some(IutEvent::Closed(how)) => {
                self.close_conn(false, how);
                self.inbox.push_back(Got::Closed);
                Ok(true)
            }
            Some(IutEvent::Connect) => {
                self.inbox.push_back(Got::Connect);
                Ok(true)
            }
        }
    }

    /// Everything the IUT already sent, observed before the tester acts.
    fn settle(&mut self) -> Result<(), Failure> {
        while self.pull(Duration::ZERO)? {}
        Ok(())
    }

    fn next_got(&mut self, within: Duration) -> Result<Option<Got>, Failure> {
        let start = self.iut.now_ns();
        let deadline = start + within.as_nanos() as u64;
        loop {
            if let Some(g) = self.inbox.pop_front() {
                return Ok(Some(g));
            }
            let left = deadline.saturating_sub(self.iut.now_ns());
            if !self.pull(Duration::from_nanos(left))? && self.iut.now_ns() >= deadline {
                return Ok(None);
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.settle()?;
        if self.conn().is_none() {
            if self.conns.last().is_some_and(|c| c.closed_by_iut) {
                // Like a write after the peer closed: lost; the script's
                // next expect sees the close.
                return Ok(());
            }
            return Err(fail(FailKind::Script, "send without a transport connection (connect or open first)"));
        }
        self.absorb(true, bytes);
        self.iut.send(bytes)?;
        Ok(())
    }

    fn conn_id(&mut self) -> ConnId {
        self.cns += 1;
        let nonce = self.iut.nonce();
        let common = if nonce == 0 {
            format!("2611250000{:02}Z", self.cns % 100)
        } else {
            format!("{nonce:016x}{:02}", self.cns % 100)
        };
        ConnId::new(&format!("TESTER{}/{:04}", self.mail, self.cns), &common)
    }

    fn connect(&mut self) -> Result<(), Failure> {
        self.settle()?;
        if self.conn().is_some() {
            return Err(fail(FailKind::Script, "connect while a transport connection is open"));
        }
        self.iut.connect()?;
        self.open_conn(Sender::Initiator);
        Ok(())
    }

    fn cn(&mut self, s: &StepSpec, setting: Option<u8>, recover: bool) -> Result<Vec<u8>, Failure> {
        let conn = self.conn_id();
        let mut cn = Cn::open(conn.clone());
        cn.token_setting = setting;
        if recover {
            let lost = self
                .last_conn
                .clone()
                .ok_or_else(|| fail(FailKind::Script, "recover: no earlier connection to quote"))?;
            self.recovered_from = Some(lost.clone());
            cn.recover = Some(lost);
        }
        if let Some(c) = s.checkpoint {
            cn.checkpoint_size = c;
        }
        if let Some(w) = s.window {
            cn.window_size = w;
        }
        if s.monologue == Some(true) {
            cn.twa = false;
        }
        self.proposed = Some((cn.checkpoint_size, cn.window_size));
        if !recover {
            self.last_conn = Some(conn);
        } else {
            // A recovered association is quoted by its original identifier
            // only if this one is lost too; quote the newest.
            self.last_conn = Some(conn);
        }
        Ok(self.pdus.cn(&cn))
    }

    fn build(&mut self, s: &StepSpec, name: &str) -> Result<Vec<u8>, Failure> {
        let p = self.pdus;
        let n = s.n.unwrap_or(1);
        Ok(match name {
            "cr" => p.cr(),
            "cc" => p.cc(),
            "cn" => {
                let setting =
                    setting_of(s.setting.as_deref().unwrap_or("initiator")).map_err(|e| fail(FailKind::Script, e))?;
                self.cn(s, setting, false)?
            }
            "cn-recover" => {
                let setting =
                    setting_of(s.setting.as_deref().unwrap_or("00")).map_err(|e| fail(FailKind::Script, e))?;
                self.cn(s, setting, true)?
            }
            "ac" => {
                let setting = match s.setting.as_deref() {
                    Some(x) => setting_of(x).map_err(|e| fail(FailKind::Script, e))?,
                    None => Some(0x00),
                };
                p.ac(&Ac { token_setting: setting, recover: None, checkpoint_size: 1, window_size: 3 })
            }
            "cn-fake-recover" => {
                let conn = self.conn_id();
                let mut cn = Cn::recover(conn, ConnId::new("NOBODY/9999", "991231235959Z"), 0x00);
                cn.token_setting = Some(0x00);
                self.proposed = Some((cn.checkpoint_size, cn.window_size));
                p.cn(&cn)
            }
            "ac-recover" => {
                let setting = match s.setting.as_deref() {
                    Some(x) => setting_of(x).map_err(|e| fail(FailKind::Script, e))?,
                    None => Some(0x00),
                };
                let quoted =
                    self.iut_conn.clone().ok_or_else(|| fail(FailKind::Script, "ac-recover: the IUT sent no CN"))?;
                let setting = setting.map(|t| if t == 0x2A { 0x15 } else { t });
                p.ac(&Ac { token_setting: setting, recover: Some(quoted), checkpoint_size: 1, window_size: 3 })
            }
            "rf" => p.rf(RefuseReason::RtsBusy, rtse_codec::p1::BindError::Busy),
            "pt" => p.pt(s.priority.unwrap_or(1)),
            "gtc" => p.gtc(),
            "gta" => p.gta(),
            "as" => {
                self.activities += 1;
                p.as_(s.id.unwrap_or(self.activities))
            }
            "ar" => {
                // Linking Information quotes the connection the activity
                // started on: the one the last recovery replaced.
                let lost = self
                    .recovered_from
                    .clone()
                    .or_else(|| self.last_conn.clone())
                    .unwrap_or_else(|| ConnId::new("TESTER/0001", "261125000001Z"));
                p.ar(&lost, s.old.unwrap_or(1), n, s.id.unwrap_or(1))
            }
            "dt" => {
                let m = p.message("T0001", s.size.unwrap_or(100) as usize);
                p.dt(&m)
            }
            "mip" => p.mip(n),
            "mia" => p.mia(n),
            "ae" => p.ae(n),
            "aea" => p.aea(n),
            "fn" => p.fn_(),
            "dn" => p.dn(),
            "ab" => p.ab(),
            "raw" => {
                let h = s.hex.as_deref().ok_or_else(|| fail(FailKind::Script, "raw needs hex"))?;
                rtse_codec::hex::decode(h).map_err(|i| fail(FailKind::Script, format!("bad hex at {i}")))?
            }
            other => return Err(fail(FailKind::Script, format!("unknown PDU {other:?}"))),
        })
    }

    /// Expect one of `names` (after any of `skip`), with field checks.
    fn expect(&mut self, s: &StepSpec, names: &[String], within: Duration) -> Result<(), Failure> {
        let skip = s.skip.clone().unwrap_or_default();
        let nothing = names.iter().any(|n| n == "nothing");
        loop {
            let Some(g) = self.next_got(within)? else {
                if nothing {
                    return Ok(());
                }
                return Err(fail(
                    FailKind::Timeout,
                    format!("timeout: nothing within {:?}; expected {}", within, names.join(" or ")),
                ));
            };
            let name = g.name();
            if let Got::Malformed(e) = &g {
                return Err(fail(FailKind::Malformed, format!("the IUT sent undecodable octets: {e}")));
            }
            if names.contains(&name) {
                if let Got::Connect = g {
                    self.iut.accept()?;
                    self.open_conn(Sender::Responder);
                }
                match self.check_fields(s, &g) {
                    // Not the one wanted, but one that may come first.
                    Err(_) if skip.contains(&name) => continue,
                    r => return r,
                }
            }
            if skip.contains(&name) {
                continue;
            }
            let kind = if matches!(g, Got::Closed) { FailKind::Closed } else { FailKind::WrongAnswer };
            return Err(fail(kind, format!("wrong answer: expected {}, got {}", names.join(" or "), describe(&g))));
        }
    }

    fn check_fields(&mut self, s: &StepSpec, g: &Got) -> Result<(), Failure> {
        let Got::Pdu { events, .. } = g else { return Ok(()) };
        if s.setting.as_deref() == Some("resolved") {
            let got = events.iter().find_map(|e| match e {
                TurnEvent::Accept(a) => Some(a.token_setting),
                _ => None,
            });
            if let Some(got) = got {
                if !matches!(got, Some(0x00 | 0x15)) {
                    return Err(fail(
                        FailKind::WrongAnswer,
                        format!(
                            "wrong answer: AC Token Setting {} does not resolve the choice (00 or 15)",
                            hex_opt(got)
                        ),
                    ));
                }
            }
        } else if let Some(want) = s.setting.as_deref() {
            let want = setting_of(want).map_err(|e| fail(FailKind::Script, e))?;
            let got = events.iter().find_map(|e| match e {
                TurnEvent::Connect(c) => Some(c.token_setting),
                TurnEvent::Accept(a) => Some(a.token_setting),
                _ => None,
            });
            if let Some(got) = got {
                if got != want {
                    return Err(fail(
                        FailKind::WrongAnswer,
                        format!("wrong answer: Token Setting {} where {} is required", hex_opt(got), hex_opt(want)),
                    ));
                }
            }
        }
        for e in events {
            if let TurnEvent::Connect(c) = e {
                // What an AC answering this CN's recovery quotes back.
                if let Some(r) = &c.recover {
                    self.iut_conn =
                        Some(ConnId::new(&String::from_utf8_lossy(&r.calling), &String::from_utf8_lossy(&r.common)));
                }
            }
            if let (TurnEvent::Accept(a), Some((cp, w))) = (e, self.proposed) {
                if let (Some(got), true) = (a.checkpoint_size, cp > 0) {
                    if i64::from(got) > cp {
                        return Err(fail(
                            FailKind::WrongAnswer,
                            format!("wrong answer: AC checkpointSize {got} above the {cp} proposed"),
                        ));
                    }
                }
                if let Some(got) = a.window_size {
                    if i64::from(got) > w || got == 0 {
                        return Err(fail(
                            FailKind::WrongAnswer,
                            format!("wrong answer: AC windowSize {got} outside 1..={w}"),
                        ));
                    }
                }
            }
        }
        if let Some(want) = s.n {
            let got = events.iter().find_map(|e| match e {
                TurnEvent::MinorSync { serial, .. }
                | TurnEvent::MinorSyncAck { serial }
                | TurnEvent::ActivityEnd { serial }
                | TurnEvent::ActivityEndAck { serial } => Some(*serial),
                TurnEvent::ActivityResume(r) => Some(r.serial),
                _ => None,
            });
            if let Some(got) = got {
                if got != want {
                    return Err(fail(
                        FailKind::WrongAnswer,
                        format!("wrong answer: serial number {got} where {want} is required"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Answer the IUT's transfer: MIA per MIP, AEA at AE.
    fn answer_transfer(&mut self, within: Duration) -> Result<(), Failure> {
        loop {
            let Some(g) = self.next_got(within)? else {
                return Err(fail(
                    FailKind::Timeout,
                    format!("timeout: the transfer stalled (nothing within {within:?})"),
                ));
            };
            let serial = |evs: &[TurnEvent]| {
                evs.iter().find_map(|e| match e {
                    TurnEvent::MinorSync { serial, .. } | TurnEvent::ActivityEnd { serial } => Some(*serial),
                    _ => None,
                })
            };
            match &g {
                Got::Pdu { name, events } => match name.as_str() {
                    "AS" | "AR" | "DT" => {}
                    "MIP" => {
                        let n = serial(events).unwrap_or(0);
                        let b = self.pdus.mia(n);
                        self.send(&b)?;
                    }
                    "AE" => {
                        let n = serial(events).unwrap_or(0);
                        let b = self.pdus.aea(n);
                        return self.send(&b);
                    }
                    _ => {
                        return Err(fail(
                            FailKind::WrongAnswer,
                            format!("wrong answer: {name} in the middle of a transfer"),
                        ))
                    }
                },
                Got::Malformed(e) => {
                    return Err(fail(FailKind::Malformed, format!("the IUT sent undecodable octets: {e}")))
                }
                Got::Closed => return Err(fail(FailKind::Closed, "the IUT closed the transport during its transfer")),
                Got::Connect => {
                    return Err(fail(FailKind::WrongAnswer, "wrong answer: a connection during a transfer"))
                }
            }
        }
    }

    /// Send a whole transfer of `size` octets (MIP/MIA every 1024 octets).
    fn send_transfer(&mut self, size: u32, within: Duration) -> Result<(), Failure> {
        self.activities += 1;
        let m = self.pdus.message(&format!("T{:04}", self.activities), size as usize);
        let b = self.pdus.as_(self.activities);
        self.send(&b)?;
        let chunks: Vec<Vec<u8>> = m.chunks(1024).map(<[u8]>::to_vec).collect();
        let mut n = 0;
        for (i, c) in chunks.iter().enumerate() {
            let b = self.pdus.dt(c);
            self.send(&b)?;
            if i + 1 < chunks.len() {
                n += 1;
                let b = self.pdus.mip(n);
                self.send(&b)?;
                let s = StepSpec { n: Some(n), ..StepSpec::default() };
                self.expect(&s, &["MIA".into()], within)?;
            }
        }
        let b = self.pdus.ae(n + 1);
        self.send(&b)?;
        let s = StepSpec { n: Some(n + 1), ..StepSpec::default() };
        self.expect(&s, &["AEA".into()], within)
    }

    fn drop(&mut self, how: &str) -> Result<(), Failure> {
        self.settle()?;
        match how {
            "fin" | "rst" => {
                let h = if how == "fin" { DropHow::Fin } else { DropHow::Rst };
                self.iut.drop_transport(h)?;
                self.close_conn(true, if how == "fin" { CloseHow::Fin } else { CloseHow::Rst });
            }
            "abort" => {
                let b = self.pdus.ab();
                self.send(&b)?;
                self.iut.drop_transport(DropHow::Fin)?;
                self.close_conn(true, CloseHow::Fin);
            }
            "half-close" => {
                // The tester's side only: the IUT must close its own (the
                // script expects `close`), which ends the connection.
                self.iut.drop_transport(DropHow::HalfClose)?;
                return Ok(());
            }
            "stall" => {
                self.iut.drop_transport(DropHow::Stall)?;
                // A dead peer: the tester sees nothing more on it.
                self.close_conn(true, CloseHow::Rst);
            }
            other => {
                return Err(fail(
                    FailKind::Script,
                    format!("unknown drop {other:?} (fin, rst, abort, half-close, stall)"),
                ))
            }
        }
        // What the IUT had not yet read or sent is gone.
        self.inbox.retain(|g| matches!(g, Got::Connect));
        Ok(())
    }

    fn step(&mut self, s: &StepSpec) -> Result<(), Failure> {
        let within = match s.within.as_deref() {
            Some(w) => duration(w).map_err(|e| fail(FailKind::Script, e))?,
            None => DEFAULT_WITHIN,
        };
        if let Some(turn) = &s.open {
            let setting = setting_of(turn).map_err(|e| fail(FailKind::Script, e))?;
            self.connect()?;
            self.send(&self.pdus.cr())?;
            self.expect(&StepSpec::default(), &["CC".into()], within)?;
            let cn = self.cn(s, setting, false)?;
            self.send(&cn)?;
            return self.expect(&StepSpec::default(), &["AC".into()], within);
        }
        if let Some(setting) = &s.recover {
            let setting = setting_of(setting).map_err(|e| fail(FailKind::Script, e))?;
            self.connect()?;
            self.send(&self.pdus.cr())?;
            self.expect(&StepSpec::default(), &["CC".into()], within)?;
            let cn = self.cn(s, setting, true)?;
            self.send(&cn)?;
            let check = StepSpec { setting: s.setting.clone(), ..StepSpec::default() };
            return self.expect(&check, &["AC".into()], within);
        }
        if s.connect == Some(true) {
            return self.connect();
        }
        if let Some(name) = &s.send {
            if name == "transfer" {
                return self.send_transfer(s.size.unwrap_or(100), within);
            }
            let b = self.build(s, name)?;
            return self.send(&b);
        }
        if let Some(e) = &s.expect {
            return self.expect(s, &e.list(), within);
        }
        if let Some(a) = &s.answer {
            return match a.as_str() {
                "transfer" => self.answer_transfer(within),
                other => Err(fail(FailKind::Script, format!("unknown answer {other:?}"))),
            };
        }
        if let Some(d) = &s.drop {
            return self.drop(d);
        }
        if let Some(w) = &s.wait {
            let d = duration(w).map_err(|e| fail(FailKind::Script, e))?;
            let end = self.iut.now_ns() + d.as_nanos() as u64;
            while self.iut.now_ns() < end {
                let left = end - self.iut.now_ns();
                if !self.pull(Duration::from_nanos(left))? && self.iut.now_ns() >= end {
                    break;
                }
            }
            return Ok(());
        }
        Err(fail(FailKind::Script, "a step with nothing to do"))
    }
}

fn hex_opt(v: Option<u8>) -> String {
    v.map_or_else(|| "absent".into(), |v| format!("{v:02X}"))
}

fn tpdu_name(t: &rtse_codec::cotp::Tpdu<'_>) -> &'static str {
    use rtse_codec::cotp::Tpdu;
    match t {
        Tpdu::Cr(_) => "CR",
        Tpdu::Cc(_) => "CC",
        Tpdu::Dt(_) => "DT",
        Tpdu::Dr(_) => "DR",
        Tpdu::Er(_) => "ER",
    }
}

fn describe(g: &Got) -> String {
    let Got::Pdu { name, events } = g else { return g.name() };
    let mut s = name.clone();
    for e in events {
        match e {
            TurnEvent::Connect(c) => {
                s += &format!(" setting={}", hex_opt(c.token_setting));
                if c.recover.is_some() {
                    s += " recover";
                }
            }
            TurnEvent::Accept(a) => {
                s += &format!(" setting={}", hex_opt(a.token_setting));
                if a.recover {
                    s += " recover";
                }
            }
            TurnEvent::Refuse { reason, .. } => s += &format!(" reason={reason:?}"),
            TurnEvent::PleaseTokens { priority, .. } => s += &format!(" priority={}", priority.unwrap_or(0)),
            TurnEvent::MinorSync { serial, .. }
            | TurnEvent::MinorSyncAck { serial }
            | TurnEvent::ActivityEnd { serial }
            | TurnEvent::ActivityEndAck { serial } => s += &format!(" n={serial}"),
            TurnEvent::ActivityResume(r) => s += &format!(" from={}", r.serial),
            TurnEvent::Data { octets } => s += &format!(" {octets}B"),
            _ => {}
        }
    }
    s
}

/// Tracker procedure checks that fail any case when the IUT trips them
/// (a case may `allow` some).
pub const PROCEDURE_CHECKS: &[&str] = &[
    "window-exceeded",
    "gtc-during-activity",
    "gtc-while-pending",
    "resume-beyond-checkpoint",
    "recovery-by-responder",
    "release-without-turn",
    "serial-error",
    "activity-violation",
    "malformed",
];

/// The invariants a case checks.
fn invariants(case: &Case) -> Result<Vec<Invariant>, String> {
    let names: Vec<String> = case
        .invariants
        .clone()
        .unwrap_or_else(|| vec!["one-holder".into(), "only-holder-sends".into(), "holder-after-recovery".into()]);
    names
        .iter()
        .map(|n| Invariant::ALL.into_iter().find(|i| i.name() == n).ok_or_else(|| format!("unknown invariant {n:?}")))
        .collect()
}

/// Run one case against `iut` (skipping it when `caps` lacks what it needs).
pub fn run_case(case: &Case, iut: &mut dyn Iut, caps: &Capabilities, seed: Option<u64>) -> CaseResult {
    let seed = seed.unwrap_or_else(|| seed_of(&case.id));
    let mut r = CaseResult {
        id: case.id.clone(),
        verdict: Verdict::Pass,
        kind: None,
        reason: None,
        seed,
        trace: Vec::new(),
        time_ns: 0,
    };
    if let Some(why) = caps.lacks(case) {
        r.verdict = Verdict::Skipped;
        r.kind = Some(FailKind::Capability);
        r.reason = Some(why);
        return r;
    }
    let invs = match invariants(case) {
        Ok(i) => i,
        Err(e) => {
            r.verdict = Verdict::Error;
            r.kind = Some(FailKind::Script);
            r.reason = Some(e);
            return r;
        }
    };
    let initiator = (case.needs.role == RoleNeed::Initiator)
        .then(|| (case.iut.mail.as_slice(), case.iut.turn.as_deref() == Some("responder")));
    if let Err(e) = iut.start(initiator, seed) {
        r.verdict = Verdict::Error;
        r.kind = Some(FailKind::Adapter);
        r.reason = Some(e.0);
        return r;
    }
    let mail = if case.iut.mail.is_empty() || initiator.is_some() {
        String::new()
    } else {
        format!(";mail={}", case.iut.mail.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    };
    let mut t = Tester {
        iut,
        pdus: if caps.mode == Mode::X410 { Pdus::x410() } else { Pdus::normal() },
        linker: AssociationLinker::new(TrackerConfig::default()),
        conns: Vec::new(),
        inbox: VecDeque::new(),
        trace: Vec::new(),
        seq: 0,
        mail,
        cns: 0,
        last_conn: None,
        activities: 0,
        proposed: None,
        recovered_from: None,
        iut_conn: None,
    };
    let mut failure = None;
    for (i, s) in case.steps.iter().enumerate() {
        if let Err(mut f) = t.step(s) {
            let preamble = s.open.is_some() || s.preamble == Some(true);
            if preamble && !matches!(f.kind, FailKind::Adapter | FailKind::Script) {
                f.reason = format!("preamble: {}", f.reason);
                f.kind = FailKind::Preamble;
            }
            f.reason = format!("step {} ({}): {}", i + 1, step_label(s), f.reason);
            failure = Some(f);
            break;
        }
    }
    if failure.is_none() {
        if let Err(f) = t.settle() {
            failure = Some(f);
        }
    }
    t.linker.finish();
    if failure.is_none() {
        let tester_sides: Vec<(AssocId, Side)> =
            t.conns.iter().map(|c| (c.id, crate::observe::side(c.tester))).collect();
        let allow = case.allow.clone().unwrap_or_default();
        'inv: for inv in &invs {
            for (id, a) in t.linker.anomalies() {
                let procedure = PROCEDURE_CHECKS.contains(&a.kind.name()) && !allow.iter().any(|x| x == a.kind.name());
                if !inv.kinds().contains(&a.kind) && !procedure {
                    continue;
                }
                let tester = tester_sides.iter().find(|(i, _)| *i == id).map(|(_, s)| *s);
                if a.by.is_some() && a.by == tester {
                    continue;
                }
                let what = if procedure {
                    format!("procedure check {}", a.kind.name())
                } else {
                    format!("invariant {}", inv.name())
                };
                failure = Some(fail(FailKind::Invariant, format!("{what} broken by the IUT: {a}")));
                break 'inv;
            }
        }
    }
    r.time_ns = t.iut.now_ns();
    t.iut.finish();
    r.trace = t.trace;
    if let Some(f) = failure {
        r.verdict = match f.kind {
            FailKind::Preamble => Verdict::Inconclusive,
            FailKind::Adapter | FailKind::Script => Verdict::Error,
            _ => Verdict::Fail,
        };
        r.kind = Some(f.kind);
        r.reason = Some(f.reason);
    }
    r
}

fn step_label(s: &StepSpec) -> String {
    if let Some(o) = &s.open {
        return format!("open {o}");
    }
    if let Some(o) = &s.recover {
        return format!("recover {o}");
    }
    if s.connect.is_some() {
        return "connect".into();
    }
    if let Some(o) = &s.send {
        return format!("send {o}");
    }
    if let Some(o) = &s.expect {
        return format!("expect {}", o.list().join("|"));
    }
    if let Some(o) = &s.answer {
        return format!("answer {o}");
    }
    if let Some(o) = &s.drop {
        return format!("drop {o}");
    }
    if let Some(o) = &s.wait {
        return format!("wait {o}");
    }
    "?".into()
}
