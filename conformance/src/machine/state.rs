//! The machine's state and transitions. See the [module docs](super).

use super::emit::{self, AcceptParams, Memo, OpenParams, Pcids, Short, Wire, TPDU_MAX, TPDU_SIZE_CODE};
use super::heard::{Contexts, Heard};
use super::{
    Action, Apdu, Config, Dialogue, Indication, Input, Notice, OpenFailure, Output, PAbortReason, Request, Role, Tick,
    TimerId, TransportEvent, NO_CHECKPOINT_SEGMENT,
};
use crate::flaw::Flaw;
use rtse_codec::acse;
use rtse_codec::ber::Octets;
use rtse_codec::cotp::{self, Tpdu};
use rtse_codec::error::{Error, Layer};
use rtse_codec::limits;
use rtse_codec::p1;
use rtse_codec::presentation::{Mode, PdvValue, Ppdu};
use rtse_codec::rtse::{AbortReason, RefuseReason, RtseApdu};
use rtse_codec::session::{self, Spdu, SpduKind, Token, TokenPosition, TokenSetting};
use rtse_codec::stack::{self, Sender, Upper};
use rtse_codec::tpkt;
use rtse_codec::x410::X410Pdu;
use std::sync::Arc;

/// Where an association stands, as far as this machine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No association.
    Idle,
    /// Initiator: transport connection requested.
    Connecting,
    /// Initiator: CR sent.
    AwaitCc,
    /// Initiator: CN sent.
    AwaitAc,
    /// Responder: transport up, waiting for CR.
    AwaitCr,
    /// Responder: CC sent, waiting for CN.
    AwaitCn,
    /// Responder: RT-OPEN indication given, waiting for the user.
    AwaitOpenResponse,
    /// Established (data transfer phase).
    Open,
    /// Initiator: FN sent, waiting for DN.
    Closing,
    /// Responder: DN sent, waiting for the transport to close.
    Released,
    /// Recovering side: waiting for the next reconnection attempt.
    RecoveryWait,
    /// Waiting side: association lost, waiting for the peer's recovery.
    AwaitRecovery,
}

/// A session connection's identity (Connection Identifier PGI: calling
/// SS-user reference and common reference).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConnRef {
    calling: Arc<[u8]>,
    common: Arc<[u8]>,
}

impl ConnRef {
    fn pair(&self) -> (&[u8], &[u8]) {
        (&self.calling, &self.common)
    }
}

/// What a machine remembers of a lost association until it is recovered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Lost {
    conn: ConnRef,
    /// Held the Turn at the loss (false after sending a GTC: the Turn is
    /// cleared at send, as ISODE does).
    turn: bool,
    /// A GTC of ours was unacknowledged at the loss.
    gtc_pending: bool,
    /// Our role in the lost association.
    role: Role,
    /// Reconnection attempts made.
    attempts: u8,
    /// Responder: the lost connection was itself a recovery whose AC the
    /// initiator may never have received; what we knew before accepting it
    /// (the initiator then quotes that older connection).
    alt: Option<Box<Rollback>>,
}

/// A responder's state before it accepted a recovery, kept until the
/// initiator shows (by sending anything) that it received the AC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Rollback {
    lost: Lost,
    prev_conn: Option<ConnRef>,
    send_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SendState {
    /// Sending DTs and MIPs.
    Data,
    /// AE sent, waiting for AEA.
    Ending,
    /// Interrupted by the loss of the association; resumed after recovery.
    Suspended,
    /// AD sent (after the receiver's ED), waiting for ADA.
    Discarding,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sending {
    apdu: Apdu,
    /// The octets the DTs carry (EXTERNAL-wrapped in normal mode).
    payload: Arc<[u8]>,
    /// Activity identifier on the current (or lost) connection.
    id: u32,
    /// Octets sent.
    sent: u32,
    /// Last MIP serial sent.
    serial: u32,
    /// Last MIP serial the receiver confirmed (MIA).
    acked: u32,
    state: SendState,
}

/// The payload is a function of the APDU and the association (mode,
/// pcid): left out of the hash.
impl std::hash::Hash for Sending {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (&self.apdu, self.id, self.sent, self.serial, self.acked, self.state).hash(h);
    }
}

/// An Activity Identifier as received (session PI 41, at most 6 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ActId {
    len: u8,
    b: [u8; 6],
}

impl ActId {
    fn new(raw: &[u8]) -> Self {
        let mut b = [0u8; 6];
        for (slot, x) in b.iter_mut().zip(raw) {
            *slot = *x;
        }
        ActId { len: raw.len().min(6) as u8, b }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Receiving {
    id: ActId,
    /// The octets of the transfer so far (not kept for a duplicate).
    buf: Vec<u8>,
    /// (serial, octets received) at each MIP.
    marks: Vec<(u32, u32)>,
    /// Last MIP serial received.
    serial: u32,
    /// Open on the current connection (false: interrupted, awaiting AR).
    live: bool,
    /// A resumed activity we had already delivered: acknowledge, do not
    /// deliver again.
    duplicate: bool,
}

impl Receiving {
    fn new(id: ActId, duplicate: bool) -> Self {
        Receiving { id, buf: Vec::new(), marks: Vec::new(), serial: 0, live: true, duplicate }
    }
    /// Back to checkpoint `at` (0 = the start); false if there is no such
    /// checkpoint.
    ///
    /// A duplicate (an activity we already delivered, resumed again) has
    /// every checkpoint: we completed it, so the sender may resume it from
    /// any checkpoint it believes confirmed. It keeps no octets and no
    /// marks of its first run (only those since the resume that took it
    /// in), so a second resume of it, after the connection that took it in
    /// was lost too (a chain of recoveries) or after an AI, would
    /// otherwise quote a checkpoint it cannot find and be aborted, and
    /// the sender would re-send the message on a fresh association:
    /// delivered twice.
    fn rewind(&mut self, at: u32) -> bool {
        if self.duplicate {
            self.marks.retain(|m| m.0 <= at);
            self.serial = at;
            return true;
        }
        let len = if at == 0 {
            0
        } else {
            match self.marks.iter().find(|m| m.0 == at) {
                Some(m) => m.1,
                None => return false,
            }
        };
        self.buf.truncate(len as usize);
        self.marks.retain(|m| m.0 <= at);
        self.serial = at;
        true
    }
}

/// The RTSE protocol machine of one MTA. See the [module docs](super) for
/// the calling contract and the procedures.
///
/// `Clone`, `Eq` and `Hash` cover the whole state (a model checker can
/// hash it); clones share the [`Config`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Machine {
    cfg: Arc<Config>,
    phase: Phase,
    role: Role,
    wire: Wire,
    checkpoint: u16,
    window: u16,
    dialogue: Dialogue,
    /// Holds the Turn (all three Turn tokens).
    turn: bool,
    /// Our GTC is unacknowledged.
    gtc_pending: bool,
    /// Token Setting of the CN (proposed by us, or received, until the AC).
    offered: u8,
    /// Transport references (X.224 source reference of ours).
    tref: u16,
    conn: Option<ConnRef>,
    /// The connection this one recovered (AR Linking Information names it).
    prev_conn: Option<ConnRef>,
    conn_seq: u32,
    lost: Option<Lost>,
    send: Option<Sending>,
    recv: Option<Receiving>,
    /// Last activity delivered (for a resume whose AEA was lost).
    done: Option<ActId>,
    /// Responder, after accepting a recovery: the state to go back to if
    /// this connection is lost before the initiator is heard on it.
    tentative: Option<Box<Rollback>>,
    next_activity: u32,
    rx_pending: Vec<u8>,
    rx_tsdu: Vec<u8>,
}

/// The layers above an SPDU that has none.
static EMPTY: Upper<'static> = Upper::EMPTY;

const TURN_TOKENS: [Token; 3] = [Token::Data, Token::MinorSync, Token::MajorActivity];

/// The side a Token Setting gives all three Turn tokens to, if it gives
/// them all to one side.
fn turn_side(ts: TokenSetting) -> Option<Role> {
    let p = ts.position(Token::Data);
    if TURN_TOKENS.iter().any(|t| ts.position(*t) != p) {
        return None;
    }
    match p {
        TokenPosition::Initiator => Some(Role::Initiator),
        TokenPosition::Responder => Some(Role::Responder),
        _ => None,
    }
}

fn setting_for(side: Role) -> TokenSetting {
    match side {
        Role::Initiator => TokenSetting::ALL_INITIATOR,
        Role::Responder => TokenSetting::TURN_RESPONDER,
    }
}

impl Machine {
    /// A machine with no association.
    #[must_use]
    pub fn new(cfg: Config) -> Self {
        let cfg = Arc::new(cfg);
        Machine {
            phase: Phase::Idle,
            role: Role::Initiator,
            wire: Wire { mode: cfg.mode, pcid: Pcids::OURS, tpdu_max: TPDU_MAX },
            checkpoint: cfg.checkpoint_size,
            window: cfg.window_size.max(1),
            dialogue: cfg.dialogue,
            turn: false,
            gtc_pending: false,
            offered: 0,
            tref: 0,
            conn: None,
            prev_conn: None,
            conn_seq: 0,
            lost: None,
            send: None,
            recv: None,
            done: None,
            tentative: None,
            next_activity: 1,
            rx_pending: Vec::new(),
            rx_tsdu: Vec::new(),
            cfg,
        }
    }

    // ------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// Where the association stands.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Our role in the current (or lost) association.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }
    /// The mode of the current association (or the configured one).
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.wire.mode
    }
    /// Established.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }
    /// Holds the Turn on an established association.
    #[must_use]
    pub fn holds_turn(&self) -> bool {
        self.turn && self.phase == Phase::Open
    }
    /// Our GTC is unacknowledged.
    #[must_use]
    pub fn gtc_pending(&self) -> bool {
        self.gtc_pending
    }
    /// Dialogue mode of the association.
    #[must_use]
    pub fn dialogue(&self) -> Dialogue {
        self.dialogue
    }
    /// Negotiated checkpointSize (units of 1024 octets).
    #[must_use]
    pub fn checkpoint_size(&self) -> u16 {
        self.checkpoint
    }
    /// Negotiated windowSize.
    #[must_use]
    pub fn window_size(&self) -> u16 {
        self.window
    }
    /// The APDU being transferred (also while suspended by a loss).
    #[must_use]
    pub fn sending(&self) -> Option<&Apdu> {
        self.send.as_ref().map(|s| &s.apdu)
    }
    /// A transfer from the peer is open on the current connection.
    #[must_use]
    pub fn receiving(&self) -> bool {
        self.recv.as_ref().is_some_and(|r| r.live)
    }
    /// A lost association is kept for recovery.
    #[must_use]
    pub fn recovering(&self) -> bool {
        self.lost.is_some()
    }

    fn flawed(&self, f: Flaw) -> bool {
        self.cfg.flaw == Some(f)
    }

    fn connected(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Connecting | Phase::RecoveryWait | Phase::AwaitRecovery)
    }

    /// A session connection exists (or is being answered), so aborts go in
    /// an AB SPDU.
    fn session_up(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Closing | Phase::Released | Phase::AwaitOpenResponse)
    }

    fn segment(&self) -> usize {
        if self.checkpoint > 0 {
            usize::from(self.checkpoint) * 1024
        } else {
            NO_CHECKPOINT_SEGMENT
        }
    }

    // ------------------------------------------------------------------
    // The Turn decisions (turn-and-recovery.md §2)
    // ------------------------------------------------------------------

    /// The Token Setting this machine proposes in its next CN: for a fresh
    /// association, [`Config::initial_turn`] (`00` in monologue); for a
    /// recovery, the "recommended proposal" of turn-and-recovery.md §2,
    /// computed from what it remembers of the lost connection. The setting
    /// is relative to the new connection, which this side initiates.
    #[must_use]
    pub fn recovery_proposal(&self) -> TokenSetting {
        let me = TokenSetting::ALL_INITIATOR;
        let peer = TokenSetting::TURN_RESPONDER;
        let Some(lost) = &self.lost else {
            return if self.dialogue == Dialogue::Monologue { me } else { setting_for(self.cfg.initial_turn) };
        };
        if self.send.is_some() {
            me // sending: it needs the tokens to resume (AR)
        } else if self.recv.is_some() {
            peer // the peer was sending
        } else if lost.gtc_pending {
            if self.flawed(Flaw::TurnClearedOnSend) {
                peer // Flaw::TurnClearedOnSend: "I gave it", though nobody knows
            } else {
                TokenSetting::TURN_CALLED_CHOICE // only the peer knows whether it got the GTC
            }
        } else if lost.turn {
            me
        } else {
            peer
        }
    }

    /// The responder's AC value for a CN Token Setting: a fixed value is
    /// echoed (the AC may not change it); "called SS-user's choice" is
    /// resolved: in a recovery, to this side if it held the Turn when the
    /// connection was lost (it processed the GTC) or was sending; otherwise
    /// (and in a fresh association) to the initiator.
    fn resolve_setting(&self, offered: TokenSetting) -> TokenSetting {
        let mine = self.lost.as_ref().is_some_and(|l| l.turn || self.send.is_some());
        let side = if mine { TokenPosition::Responder } else { TokenPosition::Initiator };
        let mut ts = offered;
        for t in TURN_TOKENS {
            if ts.position(t) == TokenPosition::CalledChoice {
                ts = ts.with(t, side);
            }
        }
        ts
    }

    /// Whether this side holds the Turn after a recovery whose Token
    /// Setting gives it to `by_setting`'s answer. The reference: the
    /// setting, and nothing else. Each flaw that deviates is one arm here.
    fn turn_after_recovery(&self, by_setting: bool, lost: &Lost) -> bool {
        match self.cfg.flaw {
            // Flaw::ForgetsGivenTurn: trusts its pre-loss memory (where a
            // GTC sent already cleared the Turn), not the setting.
            Some(Flaw::ForgetsGivenTurn) => lost.turn,
            // Flaw::TurnClearedOnSend: an unacknowledged give is final.
            Some(Flaw::TurnClearedOnSend) if lost.gtc_pending => false,
            // Flaw::BothClaimAfterRecovery: takes it regardless.
            Some(Flaw::BothClaimAfterRecovery) => true,
            _ => by_setting,
        }
    }

    // ------------------------------------------------------------------
    // Entry point
    // ------------------------------------------------------------------

    /// Process one input at time `now`; append the resulting actions to
    /// `out`. See the [module docs](super) for the contract.
    pub fn handle(&mut self, now: Tick, input: Input<'_>, out: &mut Output) {
        match input {
            Input::Received(b) => self.on_bytes(now, b, out),
            Input::Transport(e) => self.on_transport(now, e, out),
            Input::Request(r) => {
                self.request(now, r, out);
            }
            Input::Timer(t) => self.on_timer(now, t, out),
        }
    }

    /// A user request; `false` (and a [`Notice::RequestRefused`]) when it is
    /// not allowed in the current state.
    pub fn request(&mut self, now: Tick, r: Request, out: &mut Output) -> bool {
        let name = r.name();
        match self.try_request(now, r, out) {
            Ok(()) => true,
            Err(why) => {
                out.notice(Notice::RequestRefused { request: name, why });
                false
            }
        }
    }

    fn try_request(&mut self, now: Tick, r: Request, out: &mut Output) -> Result<(), &'static str> {
        let open = self.phase == Phase::Open;
        let twa = self.dialogue == Dialogue::Twa;
        match r {
            Request::Open => {
                if self.phase != Phase::Idle {
                    return Err("an association exists");
                }
                self.role = Role::Initiator;
                self.wire = Wire { mode: self.cfg.mode, pcid: Pcids::OURS, tpdu_max: TPDU_MAX };
                self.checkpoint = self.cfg.checkpoint_size;
                self.window = self.cfg.window_size.max(1);
                self.dialogue = self.cfg.dialogue;
                self.phase = Phase::Connecting;
                out.actions.push(Action::Connect);
            }
            Request::OpenResponse(res) => {
                if self.phase != Phase::AwaitOpenResponse {
                    return Err("no RT-OPEN indication to answer");
                }
                match res {
                    Ok(()) => {
                        let ts = self.resolve_setting(TokenSetting(self.offered));
                        let Some(side) = turn_side(ts) else {
                            emit::rf(out, &self.wire, RefuseReason::ValidationFailure);
                            self.disconnect(out);
                            self.teardown(out);
                            return Ok(());
                        };
                        let name = Arc::clone(&self.cfg.name);
                        let p = AcceptParams {
                            setting: ts,
                            checkpoint: self.checkpoint,
                            window: self.window,
                            recover: None,
                            name: &name,
                        };
                        emit::ac(out, &self.wire, &p);
                        self.phase = Phase::Open;
                        self.turn = side == Role::Responder;
                        self.gtc_pending = false;
                    }
                    Err(reason) => {
                        emit::rf(out, &self.wire, reason);
                        self.disconnect(out);
                        self.teardown(out);
                    }
                }
            }
            Request::Transfer(apdu) => {
                if !open {
                    return Err("no association");
                }
                if self.send.is_some() || self.receiving() {
                    return Err("a transfer is in progress");
                }
                // Flaw::SendsWithoutTurn: the holder check is skipped.
                if !self.turn && !self.flawed(Flaw::SendsWithoutTurn) {
                    return Err("not holding the Turn");
                }
                let payload = emit::transfer_payload(out, &self.wire, &apdu.octets);
                let id = self.new_activity();
                emit::short(out, &self.wire, Short::As(id));
                self.send = Some(Sending { apdu, payload, id, sent: 0, serial: 0, acked: 0, state: SendState::Data });
                self.pump(out);
            }
            Request::TurnPlease(priority) => {
                if !open || !twa {
                    return Err("RT-TURN-PLEASE needs an established two-way-alternate association");
                }
                if self.turn {
                    return Err("already holding the Turn");
                }
                emit::short(out, &self.wire, Short::Pt(priority));
            }
            Request::TurnGive => {
                if !open || !twa {
                    return Err("RT-TURN-GIVE needs an established two-way-alternate association");
                }
                if !self.turn {
                    return Err("not holding the Turn");
                }
                // Flaw::GtcDuringActivity: gives while its transfer runs.
                if self.send.is_some() && !self.flawed(Flaw::GtcDuringActivity) {
                    return Err("a transfer is in progress");
                }
                emit::short(out, &self.wire, Short::Gtc);
                self.turn = false;
                self.gtc_pending = true;
            }
            Request::Close => {
                if !open {
                    return Err("no association");
                }
                if self.role != Role::Initiator {
                    return Err("only the association-initiator may close");
                }
                if !self.turn || self.send.is_some() || self.receiving() {
                    return Err("RT-CLOSE needs the Turn and no transfer");
                }
                emit::fn_(out, &self.wire);
                self.phase = Phase::Closing;
            }
            Request::UAbort => {
                if self.phase == Phase::Idle {
                    return Err("no association");
                }
                if self.session_up() {
                    emit::ab_rtse(out, &self.wire, AbortReason::UserError);
                }
                if self.connected() || self.phase == Phase::Connecting {
                    self.disconnect(out);
                }
                self.teardown(out);
            }
        }
        let _ = now;
        Ok(())
    }

    fn new_activity(&mut self) -> u32 {
        let id = self.next_activity;
        self.next_activity = self.next_activity.wrapping_add(1).max(1);
        id
    }

    /// Send DTs and MIPs while the window allows, then AE.
    fn pump(&mut self, out: &mut Output) {
        let w = self.wire;
        let seg = self.segment();
        let ckpt = self.checkpoint > 0;
        let window = u32::from(self.window);
        let overrun = self.flawed(Flaw::WindowOverrun);
        let Some(s) = self.send.as_mut() else { return };
        while s.state == SendState::Data {
            let len = s.payload.len();
            let sent = s.sent as usize;
            if sent < len {
                let outstanding = s.serial.saturating_sub(s.acked);
                // Flaw::WindowOverrun: ISODE's normal mode blocks only when
                // more than windowSize checkpoints are outstanding.
                let full = if overrun { outstanding > window } else { outstanding >= window };
                if ckpt && full {
                    break;
                }
                let n = seg.min(len - sent);
                emit::dt(out, &w, s.payload.get(sent..sent + n).unwrap_or(&[]));
                s.sent = (sent + n) as u32;
                if ckpt && sent + n < len {
                    s.serial += 1;
                    emit::short(out, &w, Short::Mip(s.serial));
                }
            } else {
                emit::short(out, &w, Short::Ae(s.serial + 1));
                s.state = SendState::Ending;
            }
        }
    }

    /// After recovery, or when the Turn comes back: continue a suspended
    /// transfer.
    fn resume(&mut self, out: &mut Output) {
        if !self.turn || self.phase != Phase::Open {
            return;
        }
        let Some(s) = &self.send else { return };
        if s.state != SendState::Suspended {
            return;
        }
        let old_id = s.id;
        let acked = s.acked;
        // The resumed activity keeps its identifier (identifiers are per
        // connection): the Linking Information is then right whether or not
        // an earlier AR of ours reached the receiver before a later loss.
        // A restart (AS) is a new activity with a new identifier.
        let new_id = match (self.cfg.flaw, &self.prev_conn) {
            (Some(Flaw::DuplicatesOnResume), _) | (_, None) => self.new_activity(),
            _ => old_id,
        };
        let seg = self.segment() as u32;
        let w = self.wire;
        let old_conn = self.prev_conn.clone();
        let Some(s) = self.send.as_mut() else { return };
        s.id = new_id;
        s.state = SendState::Data;
        match (self.cfg.flaw, old_conn) {
            // Flaw::DuplicatesOnResume: from the start, as a new activity.
            (Some(Flaw::DuplicatesOnResume), _) | (_, None) => {
                s.sent = 0;
                s.serial = 0;
                s.acked = 0;
                emit::short(out, &w, Short::As(new_id));
            }
            (_, Some(conn)) => {
                let at = if self.checkpoint > 0 { acked } else { 0 };
                s.sent = (at.saturating_mul(seg) as usize).min(s.payload.len()) as u32;
                s.serial = at;
                s.acked = at;
                let (old, n) = emit::activity_id(old_id);
                emit::ar(out, &w, conn.pair(), &old[..n], at, new_id);
            }
        }
        self.pump(out);
    }

    // ------------------------------------------------------------------
    // Transport and timers
    // ------------------------------------------------------------------

    fn disconnect(&mut self, out: &mut Output) {
        out.actions.push(Action::Disconnect);
        self.rx_pending.clear();
        self.rx_tsdu.clear();
    }

    /// Forget the association (and any recovery), with a negative
    /// confirmation for an unfinished transfer.
    fn teardown(&mut self, out: &mut Output) {
        if let Some(s) = self.send.take() {
            out.indicate(Indication::TransferCnf { label: s.apdu.label, ok: false });
        }
        if self.lost.take().is_some() {
            out.actions.push(Action::CancelTimer(TimerId::Recovery));
            out.actions.push(Action::CancelTimer(TimerId::RecoveryWait));
        }
        self.recv = None;
        self.done = None;
        self.tentative = None;
        self.prev_conn = None;
        self.conn = None;
        self.turn = false;
        self.gtc_pending = false;
        self.phase = Phase::Idle;
        self.rx_pending.clear();
        self.rx_tsdu.clear();
    }

    fn p_abort(&mut self, reason: PAbortReason, out: &mut Output) {
        self.teardown(out);
        out.indicate(Indication::PAbortInd { reason });
    }

    fn on_transport(&mut self, now: Tick, e: TransportEvent, out: &mut Output) {
        match e {
            TransportEvent::Connected => {
                if self.phase == Phase::Connecting {
                    self.tref = self.tref.wrapping_add(1).max(1);
                    emit::cr(out, self.tref);
                    self.phase = Phase::AwaitCc;
                }
            }
            TransportEvent::Incoming => {
                if self.connected() {
                    // One transport at a time: the new one replaces it.
                    self.on_lost(now, out);
                }
                if matches!(self.phase, Phase::Idle | Phase::RecoveryWait | Phase::AwaitRecovery | Phase::Connecting) {
                    self.role = Role::Responder;
                    self.phase = Phase::AwaitCr;
                }
            }
            TransportEvent::Lost => self.on_lost(now, out),
        }
    }

    fn on_lost(&mut self, now: Tick, out: &mut Output) {
        self.rx_pending.clear();
        self.rx_tsdu.clear();
        match self.phase {
            Phase::Idle | Phase::RecoveryWait | Phase::AwaitRecovery => {}
            Phase::Connecting | Phase::AwaitCc | Phase::AwaitAc => {
                if self.lost.is_some() {
                    self.retry_later(now, out);
                } else {
                    self.phase = Phase::Idle;
                    out.indicate(Indication::OpenCnf(Err(OpenFailure::Transport)));
                }
            }
            Phase::AwaitCr | Phase::AwaitCn => self.back_to_waiting(now, out),
            Phase::AwaitOpenResponse => self.p_abort(PAbortReason::Lost, out),
            Phase::Open => self.association_lost(now, out),
            Phase::Closing => self.p_abort(PAbortReason::Lost, out),
            Phase::Released => self.phase = Phase::Idle,
        }
    }

    /// After an incoming connection that came to nothing.
    fn back_to_waiting(&mut self, now: Tick, out: &mut Output) {
        match &self.lost {
            None => self.phase = Phase::Idle,
            Some(l) if l.role == Role::Initiator || self.flawed(Flaw::ResponderRecovers) => self.retry_later(now, out),
            Some(_) => self.phase = Phase::AwaitRecovery,
        }
    }

    fn retry_later(&mut self, now: Tick, out: &mut Output) {
        self.phase = Phase::RecoveryWait;
        out.actions.push(Action::SetTimer(TimerId::Recovery, now.saturating_add(self.cfg.recovery.retry_delay)));
    }

    fn association_lost(&mut self, now: Tick, out: &mut Output) {
        if let Some(s) = self.send.as_mut() {
            s.state = SendState::Suspended;
        }
        if let Some(r) = self.recv.as_mut() {
            // Only what was confirmed (MIA) survives.
            let secured = r.marks.last().map_or(0, |m| m.0);
            r.rewind(secured);
            r.live = false;
        }
        // Flaw::DropsUnconfirmed: the interrupted transfer is forgotten
        // (reported done), never resumed.
        if self.flawed(Flaw::DropsUnconfirmed) {
            if let Some(s) = self.send.take() {
                out.indicate(Indication::TransferCnf { label: s.apdu.label, ok: true });
            }
        }
        let conn = self.conn.take();
        let turn = self.turn;
        let gtc_pending = self.gtc_pending;
        self.turn = false;
        self.gtc_pending = false;
        let Some(conn) = conn else {
            out.notice(Notice::Lost { recovering: false });
            return self.p_abort(PAbortReason::Lost, out);
        };
        let no_recovery = self.flawed(Flaw::NoRecovery) || self.cfg.recovery.max_attempts == 0;
        // Flaw::ResponderRecovers: the responder reconnects instead of waiting.
        let reconnects = !no_recovery && (self.role == Role::Initiator || self.flawed(Flaw::ResponderRecovers));
        let waits = !no_recovery && !reconnects;
        if !reconnects && !waits {
            out.notice(Notice::Lost { recovering: false });
            return self.p_abort(PAbortReason::Lost, out);
        }
        let alt = self.tentative.take();
        self.lost = Some(Lost { conn, turn, gtc_pending, role: self.role, attempts: 0, alt });
        out.notice(Notice::Lost { recovering: true });
        if reconnects {
            self.retry_later(now, out);
        } else {
            self.phase = Phase::AwaitRecovery;
            out.actions.push(Action::SetTimer(TimerId::RecoveryWait, now.saturating_add(self.cfg.recovery.wait)));
        }
    }

    fn on_timer(&mut self, now: Tick, t: TimerId, out: &mut Output) {
        let _ = now;
        match t {
            TimerId::Recovery if self.phase == Phase::RecoveryWait => {
                let max = self.cfg.recovery.max_attempts;
                let Some(lost) = self.lost.as_mut() else { return };
                lost.attempts = lost.attempts.saturating_add(1);
                if lost.attempts > max {
                    return self.p_abort(PAbortReason::Lost, out);
                }
                let attempt = lost.attempts;
                out.notice(Notice::RecoveryAttempt { attempt });
                self.role = Role::Initiator;
                self.phase = Phase::Connecting;
                out.actions.push(Action::Connect);
            }
            TimerId::RecoveryWait
                if self.lost.is_some()
                    && matches!(self.phase, Phase::AwaitRecovery | Phase::AwaitCr | Phase::AwaitCn) =>
            {
                if self.connected() {
                    self.disconnect(out);
                }
                self.p_abort(PAbortReason::Lost, out);
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------
    // Receiving
    // ------------------------------------------------------------------

    fn on_bytes(&mut self, now: Tick, bytes: &[u8], out: &mut Output) {
        if !self.connected() {
            return;
        }
        let mut buf = std::mem::take(&mut self.rx_pending);
        let buffered = !buf.is_empty();
        if buffered {
            buf.extend_from_slice(bytes);
        }
        let input: &[u8] = if buffered { &buf } else { bytes };
        let mut off = 0;
        while off < input.len() {
            let data = input.get(off..).unwrap_or(&[]);
            match tpkt::frame_len(data) {
                Ok(Some(n)) if n <= data.len() => {
                    self.on_tpkt(now, data.get(..n).unwrap_or(&[]), out);
                    off += n;
                    if !self.connected() {
                        return;
                    }
                }
                Ok(_) => break,
                Err(e) => return self.malformed(&e.shift(off), out),
            }
        }
        if buffered {
            buf.drain(..off);
        } else {
            buf.clear();
            buf.extend_from_slice(bytes.get(off..).unwrap_or(&[]));
        }
        self.rx_pending = buf;
    }

    fn malformed(&mut self, e: &Error, out: &mut Output) {
        let _ = e;
        if self.session_up() {
            emit::ab_session(out, &self.wire);
        }
        self.disconnect(out);
        self.p_abort(PAbortReason::Malformed, out);
    }

    /// The peer broke the RTSE procedure: RTAB protocolError.
    fn violation(&mut self, what: &'static str, out: &mut Output) {
        self.abort_with(AbortReason::ProtocolError, what, out);
    }

    fn abort_with(&mut self, reason: AbortReason, what: &'static str, out: &mut Output) {
        let _ = what;
        if self.session_up() {
            emit::ab_rtse(out, &self.wire, reason);
        }
        self.disconnect(out);
        self.p_abort(PAbortReason::ProtocolError, out);
    }

    fn on_tpkt(&mut self, now: Tick, b: &[u8], out: &mut Output) {
        let tpdu = match tpkt::parse(b).and_then(|(t, _)| cotp::parse(t.payload).map_err(|e| e.shift(tpkt::HEADER_LEN)))
        {
            Ok(t) => t,
            Err(e) => return self.malformed(&e, out),
        };
        match tpdu {
            Tpdu::Cr(c) => {
                if self.phase != Phase::AwaitCr || c.class() != 0 {
                    return self.malformed(&Error::new(Layer::Cotp, 4, "CR for class 0", unexpected()), out);
                }
                let code = c.tpdu_size.unwrap_or(7).clamp(7, TPDU_SIZE_CODE);
                self.wire.tpdu_max = 1 << code;
                self.tref = self.tref.wrapping_add(1).max(1);
                emit::cc(out, c.src_ref, self.tref, code);
                self.phase = Phase::AwaitCn;
            }
            Tpdu::Cc(c) => {
                if self.phase != Phase::AwaitCc || c.class() != 0 {
                    return self.malformed(&Error::new(Layer::Cotp, 4, "CC for class 0", unexpected()), out);
                }
                let code = c.tpdu_size.unwrap_or(7).clamp(7, TPDU_SIZE_CODE);
                self.wire.tpdu_max = 1 << code;
                self.send_cn(now, out);
            }
            Tpdu::Dt(d) => {
                if matches!(self.phase, Phase::AwaitCr | Phase::AwaitCc) {
                    return self.malformed(&Error::new(Layer::Cotp, 4, "CR or CC", unexpected()), out);
                }
                if !d.eot || !self.rx_tsdu.is_empty() {
                    if self.rx_tsdu.len() + d.user_data.len() > limits::MAX_TSDU_LEN {
                        return self
                            .malformed(&Error::new(Layer::Cotp, 5, "TSDU within the size limit", unexpected()), out);
                    }
                    self.rx_tsdu.extend_from_slice(d.user_data);
                    if d.eot {
                        let mut t = std::mem::take(&mut self.rx_tsdu);
                        self.on_tsdu(now, &t, out);
                        t.clear();
                        if self.rx_tsdu.is_empty() {
                            self.rx_tsdu = t;
                        }
                    }
                } else {
                    self.on_tsdu(now, d.user_data, out);
                }
            }
            Tpdu::Dr(_) => self.on_lost(now, out),
            Tpdu::Er(_) => {
                self.malformed(&Error::new(Layer::Cotp, 5, "no ER (our TPDUs are valid)", unexpected()), out)
            }
        }
    }

    fn peer_sender(&self) -> Sender {
        match self.role {
            Role::Initiator => Sender::Responder,
            Role::Responder => Sender::Initiator,
        }
    }

    fn on_tsdu(&mut self, now: Tick, bytes: &[u8], out: &mut Output) {
        // A fresh decoding context per TSDU: the machine knows the mode and
        // the contexts; the codec routes PDVs by their tags without a
        // context list (stack.rs), so nothing is allocated or remembered.
        // The session layer is parsed here and the layers above each SPDU
        // by the stack decoder, without building a whole `Stack`.
        let mut ctx = match self.phase {
            Phase::AwaitCn => stack::Context::default(),
            _ => stack::Context::with_mode(self.wire.mode),
        };
        ctx.rtse = Some(true);
        let from = self.peer_sender();
        let tsdu = match session::parse_tsdu_with(bytes, &ctx.session[0]) {
            Ok(t) => t,
            Err(e) => return self.malformed(&e, out),
        };
        // A normal-mode DT's segment, when the octets before it are those
        // of a DT decoded before (`Memo::rttr_segment`): the machine reads
        // nothing else the stack decoder gives for a DT. Only where the
        // decoding context is the fresh one (a CN or AC earlier in the
        // TSDU would change it).
        let normal =
            ctx.mode == Some(Mode::Normal) && tsdu.iter().all(|s| !matches!(s.kind(), SpduKind::Cn | SpduKind::Ac));
        for spdu in tsdu.iter() {
            // An SPDU with no layer above it (the empty GT, GTC, GTA, MIP,
            // MIA, AS, AE, AEA...) is not handed to the stack decoder: it
            // would decode nothing (no user data: Ok, an empty `Upper`),
            // and what it would learn (session requirements, the SI-41
            // sender, transfer collection) no SPDU of this TSDU and nothing
            // here reads. CN and AC always go through (they reset or
            // settle the context the SPDUs after them are decoded with),
            // unless alone in their TSDU and remembered (below).
            let kind = spdu.kind();
            let connect = matches!(kind, SpduKind::Cn | SpduKind::Ac);
            let bare = !connect && spdu.user_data().is_none_or(|u| u.is_empty() && kind != SpduKind::Dt);
            let dt = match spdu {
                Spdu::Dt(d) if normal => Some(d.user_info),
                _ => None,
            };
            // What a CN or AC alone in its TSDU (so decoded in the fresh
            // context) says, when its user data was decoded before
            // (`heard.rs`).
            let ctx_mode = ctx.mode;
            let remembered = if connect && tsdu.len() == 1 { spdu.user_data() } else { None };
            let known = remembered.and_then(|ud| out.memo.as_ref()?.heard(kind, ctx_mode, ud).cloned());
            let decoded = if bare || known.is_some() {
                Ok(None)
            } else if let Some(seg) = dt.and_then(|ud| out.memo.as_ref()?.rttr_segment(ud)) {
                Ok(Some(Upper { rtse: Some(RtseApdu::Rttr(Octets::borrowed(seg))), ..Upper::EMPTY }))
            } else {
                let up = stack::decode_upper_of(&mut ctx, from, spdu, bytes);
                if let (Some(ud), Ok(Upper { rtse: Some(RtseApdu::Rttr(seg)), acse: None, x410: None, p1: None, .. })) =
                    (dt, &up)
                {
                    Memo::of(&mut out.memo).learn_rttr(ud, seg);
                }
                up.map(Some)
            };
            // A bare SPDU borrows the one empty `Upper` rather than moving
            // and dropping one of its own (a few hundred octets).
            let up = match &decoded {
                Ok(Some(u)) => u,
                Ok(None) => &EMPTY,
                Err(e) => return self.malformed(e, out),
            };
            let heard = known.or_else(|| Heard::of(kind, up));
            if let (Some(ud), Some(h), Ok(Some(_))) = (remembered, &heard, &decoded) {
                if h.repeats() || out.recoveries_repeat {
                    Memo::of(&mut out.memo).learn_heard(kind, ctx_mode, ud, h.clone());
                }
            }
            if let Spdu::Gt(t) = spdu {
                if t.tokens().is_empty() {
                    continue;
                }
            }
            self.on_spdu(now, spdu, up, heard.as_ref(), out);
            if !self.connected() {
                return;
            }
        }
    }

    /// `heard`: what a CN's or an AC's upper layers say.
    fn on_spdu(&mut self, now: Tick, spdu: &Spdu<'_>, up: &Upper<'_>, heard: Option<&Heard>, out: &mut Output) {
        if self.phase == Phase::Open {
            // The initiator speaks on this connection: it has our AC.
            self.tentative = None;
        }
        match spdu {
            Spdu::Cn(c) => return self.on_cn(now, c, heard, out),
            Spdu::Ac(c) => return self.on_ac(now, c, heard, out),
            Spdu::Rf(_) => return self.on_rf(now, up, out),
            Spdu::Ab(a) => return self.on_ab(a.transport_disconnect, up, out),
            Spdu::Aa(_) => return,
            Spdu::Dn(_) if self.phase == Phase::Closing => {
                out.indicate(Indication::CloseCnf);
                self.disconnect(out);
                return self.teardown(out);
            }
            _ => {}
        }
        if self.phase != Phase::Open {
            return self.violation("SPDU outside the data transfer phase", out);
        }
        match spdu {
            Spdu::Pt(_) => self.on_pt(up, out),
            Spdu::Gtc(_) => self.on_gtc(out),
            Spdu::Gta(_) => {
                if !self.gtc_pending {
                    return self.violation("GTA without a GTC", out);
                }
                self.gtc_pending = false;
            }
            Spdu::As(a) => self.on_as(a.activity_id, out),
            Spdu::Ar(a) => self.on_ar(a, out),
            Spdu::Dt(d) => self.on_dt(d.user_info, up, out),
            Spdu::Mip(s) => self.on_mip(s.serial.value(), s.confirm_required(), out),
            Spdu::Mia(s) => self.on_mia(s.serial.value(), out),
            Spdu::Ae(s) => self.on_ae(s.serial.value(), out),
            Spdu::Aea(s) => self.on_aea(s.serial.value(), out),
            Spdu::Ai(_) | Spdu::Ad(_) => {
                if !self.receiving() {
                    return self.violation("AI/AD without an activity from the peer", out);
                }
                let interrupt = matches!(spdu, Spdu::Ai(_));
                emit::after_gt(out, &self.wire, if interrupt { Spdu::aia() } else { Spdu::ada() });
                if interrupt {
                    if let Some(r) = self.recv.as_mut() {
                        r.live = false;
                    }
                } else {
                    self.recv = None;
                }
            }
            Spdu::Ed(_) => {
                let sending =
                    self.send.as_ref().is_some_and(|s| matches!(s.state, SendState::Data | SendState::Ending));
                if !sending {
                    return self.violation("ED without a transfer of ours", out);
                }
                emit::after_gt(out, &self.wire, Spdu::ad(Some(session::REASON_LOCAL_ERROR)));
                if let Some(s) = self.send.as_mut() {
                    s.state = SendState::Discarding;
                }
            }
            Spdu::Ada(_) => {
                if !self.send.as_ref().is_some_and(|s| s.state == SendState::Discarding) {
                    return self.violation("ADA without an AD", out);
                }
                if let Some(s) = self.send.take() {
                    out.indicate(Indication::TransferCnf { label: s.apdu.label, ok: false });
                }
            }
            Spdu::Fn(_) => {
                if self.role != Role::Responder || self.turn || self.send.is_some() || self.receiving() {
                    return self.violation("FN not from the initiator holding the Turn with no transfer", out);
                }
                emit::dn(out, &self.wire);
                self.phase = Phase::Released;
                self.recv = None;
                self.done = None;
                out.indicate(Indication::CloseInd);
            }
            _ => self.violation("SPDU RTSE does not use here", out),
        }
    }

    fn on_pt(&mut self, up: &Upper<'_>, out: &mut Output) {
        if self.dialogue == Dialogue::Monologue {
            return self.violation("PT in monologue", out);
        }
        let priority = match (&up.rtse, &up.x410) {
            (Some(RtseApdu::Rttp(p)), _) | (_, Some(X410Pdu::Priority(p))) => *p,
            _ => 0,
        };
        if self.turn {
            out.indicate(Indication::TurnPleaseInd { priority });
        } else {
            out.notice(Notice::PleaseWithoutTurn { priority });
        }
    }

    fn on_gtc(&mut self, out: &mut Output) {
        if self.dialogue == Dialogue::Monologue {
            return self.violation("GTC in monologue", out);
        }
        if self.turn || self.receiving() {
            return self.violation("GTC to the Turn holder or during an activity", out);
        }
        emit::short(out, &self.wire, Short::Gta);
        self.turn = true;
        out.indicate(Indication::TurnGiveInd);
        self.resume(out);
    }

    fn on_as(&mut self, id: &[u8], out: &mut Output) {
        if self.turn || self.receiving() {
            return self.violation("AS from the peer while we hold the Turn or an activity is open", out);
        }
        self.done = None;
        self.recv = Some(Receiving::new(ActId::new(id), false));
    }

    fn on_ar(&mut self, a: &session::ActivityResume<'_>, out: &mut Output) {
        if self.turn || self.receiving() {
            return self.violation("AR from the peer while we hold the Turn or an activity is open", out);
        }
        let l = &a.linking;
        let refs_ok = match (l.calling_ref, l.common_ref, &self.prev_conn) {
            (None, _, _) => true,
            (Some(c), Some(m), Some(p)) => c == &*p.calling && m == &*p.common,
            _ => false,
        };
        let old = ActId::new(l.old_activity_id);
        let at = l.serial.value();
        let new = ActId::new(a.activity_id);
        if refs_ok {
            if let Some(r) = self.recv.as_mut().filter(|r| r.id == old) {
                if !r.rewind(at) {
                    return self.abort_with(AbortReason::InvalidParameter, "AR beyond the last checkpoint", out);
                }
                r.id = new;
                r.live = true;
                return;
            }
            if self.done == Some(old) {
                self.done = None;
                let mut r = Receiving::new(new, true);
                r.serial = at;
                self.recv = Some(r);
                return;
            }
            if at == 0 && self.prev_conn.is_some() {
                // Resumed from the start on a recovery: its AS was lost with
                // the old connection (the sender cannot know), so it starts
                // here.
                self.recv = Some(Receiving::new(new, false));
                return;
            }
        }
        self.abort_with(AbortReason::UnrecognizedActivity, "AR of an unknown activity", out);
    }

    fn on_dt(&mut self, user_info: &[u8], up: &Upper<'_>, out: &mut Output) {
        if self.turn || !self.receiving() {
            return self.violation("DT without an activity from the peer", out);
        }
        let seg: &[u8] = match self.wire.mode {
            Mode::X410 => user_info,
            Mode::Normal => match &up.rtse {
                Some(RtseApdu::Rttr(o)) => o.as_bytes(),
                _ => return self.violation("DT without an RTTR", out),
            },
        };
        let Some(r) = self.recv.as_mut() else { return };
        if r.duplicate {
            return;
        }
        if r.buf.len() + seg.len() > limits::MAX_TRANSFER_LEN {
            return self.abort_with(AbortReason::LocalSystemProblem, "transfer too long", out);
        }
        r.buf.extend_from_slice(seg);
    }

    fn on_mip(&mut self, serial: u32, confirm: bool, out: &mut Output) {
        if self.turn || !self.receiving() {
            return self.violation("MIP without an activity from the peer", out);
        }
        let Some(r) = self.recv.as_mut() else { return };
        if serial != r.serial + 1 {
            return self.violation("MIP serial out of sequence", out);
        }
        r.serial = serial;
        r.marks.push((serial, r.buf.len() as u32));
        if confirm {
            emit::short(out, &self.wire, Short::Mia(serial));
        }
    }

    fn on_mia(&mut self, serial: u32, out: &mut Output) {
        let ok = self.send.as_ref().is_some_and(|s| {
            matches!(s.state, SendState::Data | SendState::Ending) && serial > s.acked && serial <= s.serial
        });
        if !self.turn || !ok {
            return self.violation("MIA not confirming an outstanding checkpoint", out);
        }
        if let Some(s) = self.send.as_mut() {
            s.acked = serial;
        }
        self.pump(out);
    }

    fn on_ae(&mut self, serial: u32, out: &mut Output) {
        if self.turn || !self.receiving() {
            return self.violation("AE without an activity from the peer", out);
        }
        let Some(r) = self.recv.take() else { return };
        if serial != r.serial + 1 {
            return self.violation("AE serial out of sequence", out);
        }
        emit::short(out, &self.wire, Short::Aea(serial));
        self.done = Some(r.id);
        if r.duplicate {
            out.notice(Notice::DuplicateSuppressed);
            return;
        }
        let (apdu, label) = self.delivered(r.buf, out);
        out.indicate(Indication::TransferInd { apdu, label });
    }

    /// The APDU and its label from the octets of a transfer (remembered
    /// in the output's memo: they are a function of the octets and the
    /// mode).
    fn delivered(&self, buf: Vec<u8>, out: &mut Output) -> (Vec<u8>, Option<Arc<str>>) {
        let mode = self.wire.mode;
        let (span, label) = match out.memo.as_ref().and_then(|m| m.delivered(mode, &buf)) {
            Some(d) => d.clone(),
            None => {
                let d = label_of(mode, &buf);
                Memo::of(&mut out.memo).learn_delivered(mode, &buf, d.clone());
                d
            }
        };
        let apdu = match span.and_then(|(a, b)| buf.get(a..b)) {
            Some(inner) => inner.to_vec(),
            None => buf,
        };
        (apdu, label)
    }

    fn on_aea(&mut self, serial: u32, out: &mut Output) {
        let ok = self.send.as_ref().is_some_and(|s| s.state == SendState::Ending && serial == s.serial + 1);
        if !ok {
            return self.violation("AEA without an AE", out);
        }
        if let Some(s) = self.send.take() {
            out.indicate(Indication::TransferCnf { label: s.apdu.label, ok: true });
        }
    }

    fn on_ab(&mut self, td: Option<u8>, up: &Upper<'_>, out: &mut Output) {
        let reason = match (&up.rtse, &up.x410) {
            (Some(RtseApdu::Rtab(r)), _) => r.abort_reason,
            (_, Some(X410Pdu::AbortInformation(a))) => a.abort_reason,
            _ => None,
        };
        let user = match reason {
            Some(r) => r == AbortReason::UserError,
            None => {
                !matches!(up.presentation, Some(Ppdu::Arp(_))) && td.is_some_and(|t| t & session::TD_USER_ABORT != 0)
            }
        };
        let opening = matches!(self.phase, Phase::AwaitAc);
        self.disconnect(out);
        self.teardown(out);
        if opening {
            out.indicate(Indication::OpenCnf(Err(OpenFailure::Refused(None))));
        } else if user {
            out.indicate(Indication::UAbortInd);
        } else {
            out.indicate(Indication::PAbortInd { reason: PAbortReason::PeerAbort });
        }
    }

    // ------------------------------------------------------------------
    // Establishment and recovery
    // ------------------------------------------------------------------

    fn send_cn(&mut self, now: Tick, out: &mut Output) {
        self.conn_seq = self.conn_seq.wrapping_add(1);
        let calling = format!("{}/{:04}", self.cfg.name, self.conn_seq);
        let conn = ConnRef { calling: Arc::from(calling.as_bytes()), common: Arc::from(&emit::utc_time(now)[..]) };
        let setting = self.recovery_proposal();
        self.offered = setting.0;
        let lost = self.lost.clone();
        let name = Arc::clone(&self.cfg.name);
        let p = OpenParams {
            setting,
            calling_ref: &conn.calling,
            common_ref: &conn.common,
            recover: lost.as_ref().map(|l| l.conn.pair()),
            checkpoint: self.checkpoint,
            window: self.window,
            dialogue: self.dialogue,
            name: &name,
        };
        emit::cn(out, &self.wire, &p);
        self.conn = Some(conn);
        self.phase = Phase::AwaitAc;
    }

    fn on_cn(&mut self, now: Tick, c: &session::Connect<'_>, heard: Option<&Heard>, out: &mut Output) {
        if self.phase != Phase::AwaitCn {
            return self.violation("CN on an established connection", out);
        }
        let Some(Heard::Connect(Some(q))) = heard else {
            emit::rf_session(out, &self.wire);
            self.disconnect(out);
            return self.back_to_waiting(now, out);
        };
        self.wire.mode = q.mode;
        match q.contexts {
            Contexts::X410 => {}
            Contexts::NoCp => return self.violation("CN without a CP", out),
            Contexts::Missing => {
                emit::rf_session(out, &self.wire);
                self.disconnect(out);
                return self.back_to_waiting(now, out);
            }
            Contexts::Found(pcid) => self.wire.pcid = pcid,
        }
        let pc = q.checkpoint.clamp(0, i64::from(u16::MAX)) as u16;
        let pw = q.window.clamp(1, i64::from(u16::MAX)) as u16;
        // Decision (X.228 / X.218 intent; spec/rtse.md 2.2): checkpointSize
        // 0, which is also the RTORQ DEFAULT, says the initiator does not
        // checkpoint. The acceptor's value may not exceed the proposal, so
        // 0 is answered 0: an initiator that omitted the field (the common
        // case) is never made to answer MIPs it did not ask for. (The
        // digest reads DCE and ISODE as "0 leaves it to the acceptor"; that
        // reading is tolerated when we are the initiator, below.)
        self.checkpoint = if pc == 0 { 0 } else { pc.min(self.cfg.checkpoint_size) };
        self.window = pw.min(self.cfg.window_size.max(1));
        self.dialogue = if q.twa { Dialogue::Twa } else { Dialogue::Monologue };
        self.offered = c.effective_token_setting().0;
        self.conn = c.connection_id.as_ref().and_then(|id| {
            Some(ConnRef { calling: Arc::from(id.calling_ref?), common: Arc::from(id.common_ref.unwrap_or(&[])) })
        });
        match &q.recover {
            Some((calling, common)) => self.on_recovery_cn(now, calling, common, out),
            None => {
                if self.lost.is_some() {
                    // A fresh association replaces the one kept for recovery.
                    let conn = self.conn.take();
                    let wire = self.wire;
                    let (cp, w, d, off) = (self.checkpoint, self.window, self.dialogue, self.offered);
                    self.p_abort(PAbortReason::Lost, out);
                    (self.conn, self.wire, self.checkpoint, self.window, self.dialogue, self.offered) =
                        (conn, wire, cp, w, d, off);
                }
                self.role = Role::Responder;
                self.prev_conn = None;
                self.done = None;
                self.phase = Phase::AwaitOpenResponse;
                out.indicate(Indication::OpenInd);
            }
        }
    }

    /// A recovery CN: accepted if it quotes the association we lost as its
    /// responder (only the initiator recovers), else refused cannotRecover.
    fn on_recovery_cn(&mut self, now: Tick, calling: &[u8], common: &[u8], out: &mut Output) {
        let quotes = |c: &ConnRef| &*c.calling == calling && &*c.common == common;
        let mut ours = self.lost.as_ref().is_some_and(|l| l.role == Role::Responder && quotes(&l.conn));
        if !ours && self.lost.as_ref().and_then(|l| l.alt.as_ref()).is_some_and(|a| quotes(&a.lost.conn)) {
            // The initiator never got the AC of the recovery we accepted
            // last: go back to what we knew before it.
            if let Some(alt) = self.lost.as_mut().and_then(|l| l.alt.take()) {
                let Rollback { lost, prev_conn, send_id } = *alt;
                ours = lost.role == Role::Responder;
                self.lost = Some(lost);
                self.prev_conn = prev_conn;
                if let (Some(s), Some(id)) = (self.send.as_mut(), send_id) {
                    s.id = id;
                }
            }
        }
        let setting = self.resolve_setting(TokenSetting(self.offered));
        if !ours || turn_side(setting).is_none() {
            emit::rf(out, &self.wire, RefuseReason::CannotRecover);
            self.disconnect(out);
            out.notice(Notice::RecoveryRefused);
            return self.back_to_waiting(now, out);
        }
        let name = Arc::clone(&self.cfg.name);
        let p = AcceptParams {
            setting,
            checkpoint: self.checkpoint,
            window: self.window,
            recover: Some((calling, common)),
            name: &name,
        };
        emit::ac(out, &self.wire, &p);
        self.role = Role::Responder;
        self.phase = Phase::Open;
        if let Some(lost) = &self.lost {
            let mut lost = lost.clone();
            lost.alt = None;
            self.tentative = Some(Box::new(Rollback {
                lost,
                prev_conn: self.prev_conn.clone(),
                send_id: self.send.as_ref().map(|s| s.id),
            }));
        }
        self.recovered(setting, out);
    }

    fn on_ac(&mut self, now: Tick, c: &session::Connect<'_>, heard: Option<&Heard>, out: &mut Output) {
        if self.phase != Phase::AwaitAc {
            return self.violation("AC not answering our CN", out);
        }
        let Some(Heard::Accept(Some(a))) = heard else {
            return self.violation("AC without RTOAC/PAccept", out);
        };
        let (cs, ws) = (a.checkpoint, a.window);
        // We proposed 0 (no checkpointing) and the acceptor chose a size
        // anyway (the "acceptor's choice" reading of DCE and ISODE): go
        // along with it rather than fail an association that works.
        let cs_ok = if self.checkpoint == 0 {
            (0..=i64::from(u16::MAX)).contains(&cs)
        } else {
            (0..=i64::from(self.checkpoint)).contains(&cs)
        };
        if !cs_ok || ws < 1 || ws > i64::from(self.window) {
            return self.violation("RTOAC checkpointSize or windowSize not within what we proposed", out);
        }
        if a.recover != self.lost.is_some() {
            return self.violation("RTOAC connection data does not answer our CN", out);
        }
        self.checkpoint = cs as u16;
        self.window = ws as u16;
        let setting = c.effective_token_setting();
        let Some(side) = turn_side(setting) else {
            return self.violation("AC Token Setting does not give the Turn to one side", out);
        };
        let fixed = turn_side(TokenSetting(self.offered));
        if fixed.is_some_and(|f| f != side) {
            return self.violation("AC Token Setting changes the value our CN fixed", out);
        }
        self.phase = Phase::Open;
        let _ = now;
        if self.lost.is_some() {
            self.recovered(setting, out);
        } else {
            self.turn = side == Role::Initiator;
            self.gtc_pending = false;
            self.prev_conn = None;
            self.done = None;
            out.indicate(Indication::OpenCnf(Ok(())));
        }
    }

    fn on_rf(&mut self, now: Tick, up: &Upper<'_>, out: &mut Output) {
        if self.phase != Phase::AwaitAc {
            return self.violation("RF not answering our CN", out);
        }
        let reason = match (&up.rtse, &up.x410) {
            (Some(RtseApdu::Rtorj(j)), _) => j.refuse_reason.map(|r| r.to_i64()),
            (_, Some(X410Pdu::PRefuse(p))) => Some(p.refuse_reason.to_i64()),
            _ => None,
        };
        // Normal mode has no refuseReason: a permanent AARE rejection
        // stands for cannotRecover (see emit::rf).
        let permanent =
            matches!(&up.acse, Some(acse::AcseApdu::Aare(a)) if a.result == acse::RESULT_REJECTED_PERMANENT);
        self.disconnect(out);
        if self.lost.is_some() {
            if permanent || reason == Some(RefuseReason::CannotRecover.to_i64()) {
                return self.p_abort(PAbortReason::Lost, out);
            }
            return self.retry_later(now, out);
        }
        self.phase = Phase::Idle;
        self.conn = None;
        out.indicate(Indication::OpenCnf(Err(OpenFailure::Refused(reason))));
    }

    /// Both sides, once the recovery AC is sent or received: the Turn from
    /// the Token Setting (see [`Self::turn_after_recovery`]), then resume.
    fn recovered(&mut self, setting: TokenSetting, out: &mut Output) {
        let Some(lost) = self.lost.take() else { return };
        out.actions.push(Action::CancelTimer(TimerId::Recovery));
        out.actions.push(Action::CancelTimer(TimerId::RecoveryWait));
        let by_setting = turn_side(setting) == Some(self.role);
        self.turn = self.turn_after_recovery(by_setting, &lost);
        self.gtc_pending = false;
        self.prev_conn = Some(lost.conn);
        out.notice(Notice::Recovered { turn: self.turn, token_setting: setting.0 });
        self.resume(out);
    }
}

/// Where the APDU is in the octets of a transfer (`None`: all of them;
/// normal mode: the value of the EXTERNAL they are, when it decodes as
/// one), and its label when it decodes as a P1 MTS-APDU.
fn label_of(mode: Mode, buf: &[u8]) -> emit::Delivered {
    let inner = match mode {
        Mode::X410 => None,
        Mode::Normal => match acse::parse_external_as(Layer::Rtse, buf) {
            Ok((ext, _)) => match ext.encoding {
                PdvValue::Single(raw) => Some(raw),
                _ => None,
            },
            Err(_) => None,
        },
    };
    let apdu = inner.unwrap_or(buf);
    let label = p1::parse_mts_apdu(apdu).ok().map(|(t, _)| Arc::from(t.mts_identifier.to_string()));
    // `raw` borrows from `buf`: its span there.
    let span = inner.map(|raw| {
        let a = (raw.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
        (a, a + raw.len())
    });
    (span, label)
}

fn unexpected() -> rtse_codec::error::Found {
    rtse_codec::error::Found::Other("out of sequence")
}
