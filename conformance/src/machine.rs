//! The sans-IO RTSE protocol machine: the RTPM (X.228) with the session,
//! presentation, ACSE and transport-class-0 behaviour it relies on, for one
//! MTA and one association at a time, in both modes (X.228 normal,
//! X.410-1984), both roles, monologue and two-way-alternate.
//!
//! # Calling contract
//!
//! [`Machine::handle`]`(now, input, out)` is the only entry point. It reads
//! one [`Input`] and appends what the machine wants done to `out`
//! ([`Output::actions`], in order): [`Action::Transmit`] (one TPKT, bytes
//! in [`Output::bytes`]), [`Action::Indication`] (to the RTSE user),
//! [`Action::Connect`] / [`Action::Disconnect`] (the transport), and
//! [`Action::SetTimer`] / [`Action::CancelTimer`]. The driver (the
//! simulator, a TCP adapter, a test pump) must:
//!
//! 1. carry out the actions in order: send each `Transmit` on the current
//!    transport connection, open a new transport connection on `Connect`
//!    and report it with [`TransportEvent::Connected`] (or
//!    [`TransportEvent::Lost`] if it fails), close the current one on
//!    `Disconnect` (no event follows for it);
//! 2. report an accepted incoming transport connection with
//!    [`TransportEvent::Incoming`], its bytes with [`Input::Received`]
//!    (any chunking: the machine frames TPKTs itself), and its end with
//!    [`TransportEvent::Lost`]. There is one transport at a time: events and
//!    bytes refer to the connection most recently announced by `Connected`
//!    or `Incoming`; a driver delivers nothing from an older one;
//! 3. keep one deadline per [`TimerId`] (a `SetTimer` replaces it) and feed
//!    [`Input::Timer`] when it passes; a stale expiry is ignored;
//! 4. never let time go back. `now` is only compared with deadlines: the
//!    machine has no clock, no RNG and no I/O, so the same inputs give the
//!    same outputs, byte for byte.
//!
//! `Output` is reusable: [`Output::clear`] it between calls (or let the
//! actions accumulate); its buffers keep their capacity, so steady-state
//! token and checkpoint PDUs are encoded without heap allocation, and its
//! memo of PDUs built and decoded (each entry a function of its key, so
//! which `Output` a machine is given changes nothing but the speed) serves
//! every machine it is passed to.
//!
//! # What it sends
//!
//! Real PDUs, built with the codec: TPKT + X.224 class 0 (CR/CC, DT with
//! EOT, long TSDUs split over several DTs), session SPDUs (category-2 SPDUs
//! after the empty GT), and above them, in normal mode, presentation
//! CP/CPA/CPR/ARU/User-data with the P1 contexts (1 ACSE, 3 id-as-mta-rtse,
//! 5 id-as-mtse), ACSE AARQ/AARE/RLRQ/RLRE/ABRT and RTSE
//! RTORQ/RTOAC/RTORJ/RTTP/RTTR/RTAB; in X.410-1984 mode PConnect, PAccept,
//! PRefuse, Priority and AbortInformation, and raw APDU octets in DT. Every
//! received TPKT is decoded with [`rtse_codec::stack`], or its meaning is
//! taken from the output's memo of what the same octets decoded to before
//! (a DT's header, a fresh CN's or AC's upper layers); nothing here parses
//! raw bytes itself.
//!
//! # The procedures (rtse.md, session.md §4-§6, turn-and-recovery.md)
//!
//! * **RT-OPEN**: CR/CC, then CN (Connection Identifier `name/nnnn` +
//!   UTCTime of `now`, Token Setting `00` or `15` from
//!   [`Config::initial_turn`], requirements `0249`) / AC or RF. The
//!   responder gives [`Indication::OpenInd`] and waits for
//!   [`Request::OpenResponse`]. Negotiation: checkpointSize 0 or 1..=proposed
//!   (proposed 0, or absent, means no checkpointing and is answered 0; as
//!   initiator, a non-zero answer to a proposed 0 is tolerated, as DCE and
//!   ISODE acceptors give one), windowSize 1..=proposed.
//! * **RT-TRANSFER**: holder only, one at a time: AS, DTs of
//!   `checkpointSize * 1024` octets each followed (except the last) by a MIP
//!   asking for confirmation, at most `windowSize` MIPs unacknowledged, then
//!   AE; AEA is the positive confirmation. Without checkpointing the APDU
//!   goes in DTs of [`NO_CHECKPOINT_SEGMENT`] octets. The receiver answers
//!   each MIP with MIA, and AE with AEA, and then delivers.
//! * **RT-TURN-PLEASE**: non-holder, twa: PT (data token) with the priority.
//!   A please reaching a non-holder (a race with a give, or a confused peer)
//!   is not an RTSE event: it is reported as [`Notice::PleaseWithoutTurn`]
//!   and otherwise ignored (turn-and-recovery.md §4.8: never silent).
//! * **RT-TURN-GIVE**: holder, twa, no transfer: GTC; the Turn is cleared
//!   when the GTC is sent (ISODE), the receiving machine answers GTA.
//! * **RT-CLOSE**: the initiator holding the Turn with no transfer: FN (+
//!   RLRQ) / DN (+ RLRE); the initiator then disconnects.
//! * **RT-U-ABORT**: AB (+ ARU, ABRT, RTAB userError; X.410: AB alone),
//!   then disconnect. A protocol violation by the peer is answered with
//!   RTAB protocolError (AbortInformation in X.410 mode), undecodable bytes
//!   with a session AB "protocol error"; either way RT-P-ABORT to the user,
//!   never a panic.
//! * **Recovery** after the transport is lost while the association is
//!   open: the association-initiator reconnects after
//!   [`RecoveryConfig::retry_delay`] (new transport, CR/CC, CN with a new
//!   Connection Identifier and RTORQ/PConnect `recover` quoting the lost
//!   one), at most [`RecoveryConfig::max_attempts`] times; the responder
//!   waits [`RecoveryConfig::wait`] for it and accepts a recovery that
//!   quotes the lost connection, else refuses `cannotRecover`. Recovery is
//!   attempted whether or not a transfer was in progress, because the Turn
//!   is at stake either way (the field failure involves no transfer).
//!   Then the sender resumes its interrupted transfer with AR (Linking
//!   Information: the lost connection's references, the old activity, the
//!   last checkpoint the receiver confirmed); the receiver goes back to that
//!   checkpoint. A resumed activity the receiver had already completed (its
//!   AEA was lost) is taken in and acknowledged again but not delivered
//!   twice ([`Notice::DuplicateSuppressed`]), also when that resume is
//!   itself lost and resumed again (a chain of recoveries: the duplicate
//!   accepts a resume from any checkpoint). When recovery fails the user
//!   gets RT-P-ABORT and a negative RT-TRANSFER confirmation.
//!
//! # Who holds the Turn after recovery (the decision; docs/machine.md)
//!
//! **Both sides take the holder from the recovery's Token Setting Item (the
//! CN value as resolved by the AC) and from nothing else**
//! (turn-and-recovery.md §2, "the one rule"). Memory of the lost connection
//! only chooses what the recovering initiator *proposes*
//! ([`Machine::recovery_proposal`]): tokens to itself (`00`) if it was
//! sending, to the peer (`15`) if the peer was sending, `00` if it held the
//! Turn, `15` if it did not, and, when its GTC was still unacknowledged,
//! `2A` ("called SS-user's choice"): the responder, who alone knows whether
//! it processed the GTC, resolves it in the AC (`15` if it holds the Turn
//! or was sending, else `00`) and acts on the value it sent.
#![forbid(unsafe_code)]

mod emit;
mod heard;
mod state;

pub use self::state::{Machine, Phase};

use crate::flaw::Flaw;
use rtse_codec::presentation::Mode;
use rtse_codec::rtse::RefuseReason;
use rtse_codec::session::SpduKind;
use std::sync::Arc;

/// Time, in nanoseconds from any origin the driver chooses.
pub type Tick = u64;

/// Octets per DT when checkpointing is off (checkpointSize 0).
pub const NO_CHECKPOINT_SEGMENT: usize = 16 * 1024;

/// Which end of an association (the initiator sent the CN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Opened the association (sent CN); the only side that may close it
    /// and that re-establishes it after a loss.
    Initiator,
    /// Accepted it.
    Responder,
}

impl Role {
    /// The other end.
    #[must_use]
    pub const fn peer(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

/// RTORQ dialogueMode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialogue {
    /// Only the initiator ever holds the Turn.
    Monologue,
    /// Two-way alternate (P1).
    Twa,
}

/// Recovery timing and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveryConfig {
    /// Initiator: delay before each reconnection attempt.
    pub retry_delay: Tick,
    /// Responder: how long it keeps a lost association for recovery.
    pub wait: Tick,
    /// Initiator: attempts before giving up (0 = never recover).
    pub max_attempts: u8,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig { retry_delay: 1_000_000_000, wait: 30_000_000_000, max_attempts: 3 }
    }
}

/// What a machine proposes and accepts. Shared by clones (`Arc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Config {
    /// The MTA name: P1 bind name and prefix of the calling SS-user
    /// reference (`name/0001`).
    pub name: Arc<str>,
    /// Mode used when this side opens; a responder follows the CN.
    pub mode: Mode,
    /// Dialogue mode proposed when this side opens.
    pub dialogue: Dialogue,
    /// checkpointSize proposed (initiator) or the most accepted
    /// (responder), in units of 1024 octets; 0 = none.
    pub checkpoint_size: u16,
    /// windowSize proposed / most accepted (at least 1).
    pub window_size: u16,
    /// Who gets the Turn when this side opens (Token Setting `00` / `15`).
    pub initial_turn: Role,
    /// Recovery timing.
    pub recovery: RecoveryConfig,
    /// A named deviation (`None`: the reference behaviour).
    pub flaw: Option<Flaw>,
}

impl Config {
    /// Normal mode, twa, checkpointSize 1, window 3, the initiator starts
    /// with the Turn, default recovery, no flaw.
    pub fn new(name: &str) -> Self {
        Config {
            name: Arc::from(name),
            mode: Mode::Normal,
            dialogue: Dialogue::Twa,
            checkpoint_size: 1,
            window_size: 3,
            initial_turn: Role::Initiator,
            recovery: RecoveryConfig::default(),
            flaw: None,
        }
    }
}

/// Timers a machine sets; one deadline each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerId {
    /// Recovering side: time for the next reconnection attempt.
    Recovery,
    /// Waiting side: give up waiting for a recovery.
    RecoveryWait,
}

impl TimerId {
    /// All timers (index = `as usize`).
    pub const ALL: [TimerId; 2] = [TimerId::Recovery, TimerId::RecoveryWait];
}

/// Transport events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportEvent {
    /// Our [`Action::Connect`] succeeded.
    Connected,
    /// A peer connected to us.
    Incoming,
    /// The current transport connection ended (FIN, RST, failed connect).
    Lost,
}

/// A message to transfer: the APDU octets (a P1 MTS-APDU) and its label
/// (the MTS identifier, as [`rtse_codec::p1::MtsIdentifier`] displays it).
/// Cheap to clone. Equality compares both; the hash covers the label only
/// (equal values still hash alike), so hashing a state does not read every
/// queued APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apdu {
    /// Label (`/C=GB/A= /P=ACME/;MSG-0001`).
    pub label: Arc<str>,
    /// The MTS-APDU.
    pub octets: Arc<[u8]>,
}

impl std::hash::Hash for Apdu {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.label.hash(h);
    }
}

impl Apdu {
    /// A P1 message with identifier `/C=GB/A= /P=ACME/;<local_id>` and
    /// `content`, built with [`rtse_codec::p1::build_message`].
    pub fn message(local_id: &str, content: &[u8]) -> Self {
        let id = rtse_codec::p1::MtsIdentifier::new("GB", " ", Some("ACME"), local_id);
        Apdu { label: Arc::from(id.to_string()), octets: Arc::from(rtse_codec::p1::build_message(&id, content)) }
    }
}

/// RTSE service requests (X.218).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// RT-OPEN request (parameters from [`Config`]).
    Open,
    /// RT-OPEN response: accept, or refuse with a reason.
    OpenResponse(Result<(), RefuseReason>),
    /// RT-TRANSFER request.
    Transfer(Apdu),
    /// RT-TURN-PLEASE request (priority: lower is more urgent, 0 = to close).
    TurnPlease(i64),
    /// RT-TURN-GIVE request.
    TurnGive,
    /// RT-CLOSE request.
    Close,
    /// RT-U-ABORT request.
    UAbort,
}

impl Request {
    /// The primitive's name (`RT-TRANSFER` ...).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Request::Open => "RT-OPEN",
            Request::OpenResponse(_) => "RT-OPEN response",
            Request::Transfer(_) => "RT-TRANSFER",
            Request::TurnPlease(_) => "RT-TURN-PLEASE",
            Request::TurnGive => "RT-TURN-GIVE",
            Request::Close => "RT-CLOSE",
            Request::UAbort => "RT-U-ABORT",
        }
    }
}

/// One input to [`Machine::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// Bytes from the peer on the current transport (any chunking).
    Received(&'a [u8]),
    /// A transport event.
    Transport(TransportEvent),
    /// A user request.
    Request(Request),
    /// A timer's deadline passed.
    Timer(TimerId),
}

/// Why the provider aborted (RT-P-ABORT indication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PAbortReason {
    /// The association was lost and is not recovered (no recovery, attempts
    /// exhausted, waited in vain, recovery refused).
    Lost,
    /// The peer violated the protocol (we sent RTAB protocolError or a
    /// session AB).
    ProtocolError,
    /// Undecodable bytes from the peer.
    Malformed,
    /// The peer aborted (RTAB / AbortInformation other than userError, or a
    /// session AB without RTSE data).
    PeerAbort,
}

/// Why an RT-OPEN did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenFailure {
    /// Refused by the peer (RTORJ / PRefuse reason when the wire says).
    Refused(Option<i64>),
    /// The transport could not be set up or was lost during establishment.
    Transport,
}

/// Informational events that are not X.218 primitives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "notice")]
pub enum Notice {
    /// The association's transport was lost; `recovering`: this side
    /// reconnects or waits for the peer to.
    Lost { recovering: bool },
    /// A recovery attempt starts (attempt number from 1).
    RecoveryAttempt { attempt: u8 },
    /// The association was recovered; `turn`: whether this side now holds
    /// the Turn (from the recovery's Token Setting).
    Recovered { turn: bool, token_setting: u8 },
    /// A please arrived while this side does not hold the Turn.
    PleaseWithoutTurn { priority: i64 },
    /// A resumed activity the receiver had already delivered was
    /// acknowledged again without a second delivery.
    DuplicateSuppressed,
    /// A user request not allowed in the current state (refused locally).
    RequestRefused { request: &'static str, why: &'static str },
    /// A peer's recovery attempt was refused (cannotRecover).
    RecoveryRefused,
}

/// Indications and confirmations to the RTSE user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "ind")]
pub enum Indication {
    /// RT-OPEN indication: answer with [`Request::OpenResponse`].
    OpenInd,
    /// RT-OPEN confirmation.
    OpenCnf(Result<(), OpenFailure>),
    /// RT-TRANSFER indication: a delivered APDU and its label (when it
    /// decodes as a P1 MTS-APDU).
    TransferInd {
        #[serde(skip)]
        apdu: Vec<u8>,
        #[serde(serialize_with = "ser_opt_arc")]
        label: Option<Arc<str>>,
    },
    /// RT-TRANSFER confirmation (`ok`: positive).
    TransferCnf {
        #[serde(serialize_with = "ser_arc")]
        label: Arc<str>,
        ok: bool,
    },
    /// RT-TURN-PLEASE indication.
    TurnPleaseInd { priority: i64 },
    /// RT-TURN-GIVE indication (this side now holds the Turn).
    TurnGiveInd,
    /// RT-CLOSE indication (the responder answered DN).
    CloseInd,
    /// RT-CLOSE confirmation.
    CloseCnf,
    /// RT-U-ABORT indication.
    UAbortInd,
    /// RT-P-ABORT indication.
    PAbortInd { reason: PAbortReason },
    /// Not an X.218 primitive.
    Notice(Notice),
}

/// What kind of TPKT a [`Transmit`] carries, without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PduInfo {
    /// X.224 TPDU: `"CR"`, `"CC"` or `"DT"`.
    pub tpdu: &'static str,
    /// The SPDU that gives the TSDU its meaning (the last one: DT, MIP, ...
    /// after the empty GT; or the category-1 SPDU). `None` for CR/CC.
    pub spdu: Option<SpduKind>,
    /// Last TPDU of its TSDU (EOT).
    pub eot: bool,
}

impl PduInfo {
    /// Short name: the SPDU's (`GTC`, `AS`...) or the TPDU's (`CR`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.spdu.map_or(self.tpdu, SpduKind::name)
    }
}

/// One TPKT to send: bytes `start..end` of [`Output::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transmit {
    /// First byte in the output's wire buffer.
    pub start: u32,
    /// One past the last.
    pub end: u32,
    /// What it is.
    pub pdu: PduInfo,
}

/// What the machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send one TPKT on the current transport connection.
    Transmit(Transmit),
    /// Tell the RTSE user.
    Indication(Indication),
    /// Open a new transport connection to the peer.
    Connect,
    /// Close the current transport connection.
    Disconnect,
    /// (Re)arm a timer for the given deadline.
    SetTimer(TimerId, Tick),
    /// Disarm a timer.
    CancelTimer(TimerId),
}

/// The actions of one or more [`Machine::handle`] calls and the bytes of
/// their transmissions, plus encoding buffers reused across calls.
#[derive(Debug, Default)]
pub struct Output {
    /// Actions, in order.
    pub actions: Vec<Action>,
    wire: Vec<u8>,
    pool: Vec<Vec<u8>>,
    /// PDUs built and decoded before ([`emit::Memo`]); boxed on first
    /// use, so that an empty `Output` (which drivers swap in and out on
    /// every input) costs nothing to make or drop.
    memo: Option<Box<emit::Memo>>,
    /// Remember what a recovery's CN or AC says, too (see
    /// [`Output::remember_recoveries`]).
    recoveries_repeat: bool,
}

impl Output {
    /// Empty.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    /// Have the memo remember what a received recovery CN or AC says, as
    /// it does a fresh association's. Off by default: in a simulation
    /// each recovery quotes its own lost connection (a reference with the
    /// time in it), so its user data never repeats and remembering it
    /// would only push out what does repeat. The model check meets the
    /// same few recovery TPKTs in thousands of MTA states (a handful of
    /// clock values, a handful of references). What a CN or AC says is a
    /// function of its kind, the decoding context's mode and its user
    /// data either way (`machine/heard.rs`).
    pub(crate) fn remember_recoveries(&mut self) {
        self.recoveries_repeat = true;
    }
    /// Forget the actions and bytes (capacity kept).
    pub fn clear(&mut self) {
        self.actions.clear();
        self.wire.clear();
    }
    /// The bytes of a transmission.
    #[must_use]
    pub fn bytes(&self, t: &Transmit) -> &[u8] {
        self.wire.get(t.start as usize..t.end as usize).unwrap_or(&[])
    }
    /// The transmissions, with their bytes.
    pub fn transmits(&self) -> impl Iterator<Item = (&Transmit, &[u8])> + '_ {
        self.actions.iter().filter_map(|a| match a {
            Action::Transmit(t) => Some((t, self.bytes(t))),
            _ => None,
        })
    }
    /// The indications.
    pub fn indications(&self) -> impl Iterator<Item = &Indication> + '_ {
        self.actions.iter().filter_map(|a| match a {
            Action::Indication(i) => Some(i),
            _ => None,
        })
    }
    pub(crate) fn take_buf(&mut self) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b
    }
    pub(crate) fn give_buf(&mut self, b: Vec<u8>) {
        if self.pool.len() < 8 {
            self.pool.push(b);
        }
    }
    pub(crate) fn indicate(&mut self, i: Indication) {
        self.actions.push(Action::Indication(i));
    }
    pub(crate) fn notice(&mut self, n: Notice) {
        self.actions.push(Action::Indication(Indication::Notice(n)));
    }
}

fn ser_arc<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn ser_opt_arc<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v),
        None => s.serialize_none(),
    }
}
