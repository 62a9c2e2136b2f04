//! The tracker's answers: holder, tokens, what is in flight, transfers,
//! anomalies, timeline rows, invariants.

use super::event::{ActivityId, ConnRef, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Who holds the Turn (data + minor-sync + major/activity tokens together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TurnHolder {
    /// The association-initiator's side owns every available Turn token.
    Initiator,
    /// The association-responder's side owns every available Turn token.
    Responder,
    /// A GTC was sent and its GTA not yet seen.
    InTransit,
    /// Nobody: no session connection (not yet, or no longer), or the tokens
    /// are split between the sides.
    None,
    /// The capture does not show it (no Token Setting seen, capture started
    /// mid-association or lost data) and behaviour has not revealed it yet.
    Unknown,
}

impl TurnHolder {
    /// `"initiator"`, `"responder"`, `"in-transit"`, `"none"`, `"unknown"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            TurnHolder::Initiator => "initiator",
            TurnHolder::Responder => "responder",
            TurnHolder::InTransit => "in-transit",
            TurnHolder::None => "none",
            TurnHolder::Unknown => "unknown",
        }
    }

    /// The side, for `Initiator` / `Responder`.
    #[must_use]
    pub const fn side(self) -> Option<Side> {
        match self {
            TurnHolder::Initiator => Some(Side::Initiator),
            TurnHolder::Responder => Some(Side::Responder),
            _ => None,
        }
    }
}

impl From<Side> for TurnHolder {
    fn from(side: Side) -> Self {
        match side {
            Side::Initiator => TurnHolder::Initiator,
            Side::Responder => TurnHolder::Responder,
        }
    }
}

impl fmt::Display for TurnHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Owner of one session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenOwner {
    /// Initiator's side.
    Initiator,
    /// Responder's side.
    Responder,
    /// Moved by a GTC whose GTA has not been seen.
    InTransit,
    /// Not shown by the capture.
    Unknown,
}

/// Ownership of the four session tokens; `None` = token not available
/// (its functional unit was not selected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tokens {
    /// Data token (half-duplex FU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<TokenOwner>,
    /// Synchronize-minor token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<TokenOwner>,
    /// Major/activity token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<TokenOwner>,
    /// Release token (negotiated release FU; not part of the Turn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<TokenOwner>,
}

impl Tokens {
    /// The Turn tokens that are available, in order data, minor, major.
    pub fn turn_tokens(&self) -> impl Iterator<Item = TokenOwner> + '_ {
        [self.data, self.minor, self.major].into_iter().flatten()
    }
}

/// The session-connection phase the tracker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Nothing observed yet.
    Idle,
    /// Transport up, no CN yet.
    TransportUp,
    /// CN seen, no AC/RF yet.
    Connecting,
    /// Session connection established (or assumed: capture started
    /// mid-association).
    Established,
    /// FN seen, no DN yet.
    Releasing,
    /// DN seen: released in order.
    Released,
    /// RF seen.
    Refused,
    /// User abort (RT-U-ABORT): no recovery expected.
    Aborted,
    /// Connection lost (FIN/RST without release, provider abort): RTSE
    /// may recover it on a new connection.
    Lost,
    /// Transport closed before any session connection.
    Closed,
    /// Observation stopped (capture end or gap) with the association open.
    Unobserved,
}

impl Phase {
    /// A session connection exists (Turn tokens are on this connection).
    #[must_use]
    pub const fn connected(self) -> bool {
        matches!(self, Phase::Established | Phase::Releasing)
    }
}

/// A GTC in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Give {
    /// The side that sent GTC.
    pub from: Side,
    /// Where.
    pub seq: u64,
    /// When.
    pub time_ns: u64,
}

/// An outstanding RT-TURN-PLEASE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Please {
    /// The side that sent PT.
    pub from: Side,
    /// Most urgent priority asked for so far (absent in PT = 0).
    pub priority: i64,
    /// Token Item bits asked for.
    pub tokens: u8,
    /// First PT of this request.
    pub seq: u64,
    /// When.
    pub time_ns: u64,
    /// Already reported as please-unanswered.
    #[serde(skip)]
    pub(crate) reported: bool,
}

/// An open activity (RT-TRANSFER in progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Activity identifier.
    pub id: ActivityId,
    /// The sending side (Turn holder).
    pub sender: Side,
    /// Last MIP serial sent (0 = none since AS; after AR the resume point).
    pub last_sent: u32,
    /// Last MIA serial seen (the receiver's last secured checkpoint).
    pub last_acked: u32,
    /// AE sent with this serial, AEA not yet seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_serial: Option<u32>,
    /// AI or AD sent, AIA/ADA not yet seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closing: Option<Closing>,
    /// DT octets seen.
    pub octets: u64,
    /// The transfer this activity carries ([`Transfer::no`]).
    pub transfer: u64,
    /// Started before the capture did: identifier and serial numbers are
    /// learnt from what is seen, not checked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// How an activity is being closed other than by AE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Closing {
    /// AI sent: kept for a later AR.
    Interrupt,
    /// AD sent: discarded.
    Discard,
}

/// Where one RT-TRANSFER stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferState {
    /// AS/AR seen, AE not yet.
    InProgress,
    /// AE seen, AEA not yet.
    Ended,
    /// AEA seen: delivered at the receiver, positively confirmed.
    Confirmed,
    /// AI/AIA: interrupted, may be resumed with AR.
    Interrupted,
    /// AD: discarded (negative confirmation).
    Discarded,
    /// Inherited from the lost association this one recovers; waits for an
    /// AR or a restart.
    Pending,
    /// Handed over to the association that recovered this one.
    HandedOver,
}

impl TransferState {
    /// Not (yet) confirmed positively or negatively.
    #[must_use]
    pub const fn unconfirmed(self) -> bool {
        matches!(
            self,
            TransferState::InProgress | TransferState::Ended | TransferState::Interrupted | TransferState::Pending
        )
    }
}

/// One RT-TRANSFER attempt (an activity, or a pending one inherited from a
/// lost association).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// Number, unique within the tracker (inherited transfers get new ones).
    pub no: u64,
    /// The sending side.
    pub sender: Side,
    /// Activity identifier of the latest activity carrying it.
    pub activity: ActivityId,
    /// P1 label, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// State.
    pub state: TransferState,
    /// Where it started (AS/AR), or where it was inherited.
    pub seq: u64,
    /// When.
    pub time_ns: u64,
    /// Confirmed (AEA) at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_seq: Option<u64>,
    /// Started by AR (resume) rather than AS.
    pub resumed: bool,
    /// Inherited from the association this one recovers (state Pending,
    /// or what continued it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inherited_from: Option<AssocId>,
    /// The earlier attempt of the same APDU this one continues (resume, or
    /// restart after recovery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continues: Option<u64>,
    /// The later attempt that continues this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continued_by: Option<u64>,
    /// Whether `continues` was guessed (restart matched by sender and
    /// order because no label was known).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub guessed_link: bool,
    /// Last MIA serial of the old activity (for resume checks).
    pub last_acked: u32,
    /// Label delivered on another association (a re-send on a fresh
    /// association): not lost.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delivered_elsewhere: bool,
}

/// Identifies one association inside an [`AssociationLinker`](super::AssociationLinker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AssocId(pub u32);

impl fmt::Display for AssocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a label was delivered (AEA sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Association (when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assoc: Option<AssocId>,
    /// AEA seq.
    pub seq: u64,
    /// Receiving side.
    pub receiver: Side,
}

/// What a lost association leaves to the one that recovers it (rtse.md §6:
/// RTSE state survives the connection). Used only to judge the recovery:
/// the holder after recovery comes from the recovery's Token Setting alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inheritance {
    /// The lost association.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<AssocId>,
    /// Its Connection Identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_ref: Option<ConnRef>,
    /// Turn holder when it was lost (after loss the holder is `none`; this
    /// is the last holder while connected).
    pub holder_at_loss: Option<TurnHolder>,
    /// GTC in flight when lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub give_in_flight: Option<Give>,
    /// Please outstanding when lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub please: Option<Please>,
    /// Activity open when lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
    /// Unconfirmed transfers (latest attempt of each APDU).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Transfer>,
    /// Labels delivered so far (for transfer-duplicated across recovery).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub delivered: BTreeMap<String, Delivery>,
}

impl Inheritance {
    /// Was the Turn at risk when the association was lost (give in flight
    /// or please outstanding)?
    #[must_use]
    pub fn turn_at_risk(&self) -> bool {
        self.give_in_flight.is_some() || self.please.is_some()
    }
}

/// Kinds of anomaly. JSON: kebab-case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// After recovery nobody acts as holder: the token owner by the
    /// recovery's Token Setting asks for the Turn, or ignores a please.
    TurnLost,
    /// Both sides behave as holder (holder-only SPDUs from both without an
    /// intervening token move).
    TwoHolders,
    /// A holder-only SPDU (AS, AR, DT, MIP, AE, AI, AD, GTC, GT) from a side
    /// that does not own the tokens it needs.
    DataWithoutTurn,
    /// A please to an idle holder not answered by GTC within the bound or
    /// by the end of the association/capture.
    PleaseUnanswered,
    /// A transfer never confirmed and never resumed/restarted.
    TransferLost,
    /// The same label delivered (AEA) twice.
    TransferDuplicated,
    /// PT from the side that owns the tokens it asks for.
    PleaseFromHolder,
    /// GTC while an activity is open.
    GtcDuringActivity,
    /// GTC while a GTC is unacknowledged.
    GtcWhilePending,
    /// More unacknowledged MIPs than windowSize.
    WindowExceeded,
    /// AR's serial number beyond the last MIA the receiver sent.
    ResumeBeyondCheckpoint,
    /// A recovery by the side that was the responder of the lost
    /// association.
    RecoveryByResponder,
    /// A recovery CN quoting a connection not seen (capture may start
    /// after it).
    RecoveryUnlinked,
    /// Token Setting with reserved bits, left unresolved in AC, or changed
    /// by AC where CN had fixed it.
    InvalidTokenSetting,
    /// Turn tokens split between the sides.
    SplitTokens,
    /// Please/give or a responder-held Turn in monologue.
    TurnInMonologue,
    /// FN not from the initiator holding the Turn with no activity open.
    ReleaseWithoutTurn,
    /// Session token procedure broken (GTA without GTC, data before GTA,
    /// PT for unavailable tokens, ED by the data-token owner, ...).
    SessionViolation,
    /// RTSE transfer procedure broken (DT outside an activity, AS inside
    /// one, MIA/AEA from the sender, AR of an unknown activity, a resume
    /// re-sending a different APDU, ...).
    ActivityViolation,
    /// Serial number out of sequence (MIP, MIA, AE, AEA).
    SerialError,
    /// An event impossible in the current phase (PT before AC, data after
    /// close, ...).
    UnexpectedEvent,
    /// Undecodable PDU.
    Malformed,
}

impl AnomalyKind {
    /// The kebab-case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            AnomalyKind::TurnLost => "turn-lost",
            AnomalyKind::TwoHolders => "two-holders",
            AnomalyKind::DataWithoutTurn => "data-without-turn",
            AnomalyKind::PleaseUnanswered => "please-unanswered",
            AnomalyKind::TransferLost => "transfer-lost",
            AnomalyKind::TransferDuplicated => "transfer-duplicated",
            AnomalyKind::PleaseFromHolder => "please-from-holder",
            AnomalyKind::GtcDuringActivity => "gtc-during-activity",
            AnomalyKind::GtcWhilePending => "gtc-while-pending",
            AnomalyKind::WindowExceeded => "window-exceeded",
            AnomalyKind::ResumeBeyondCheckpoint => "resume-beyond-checkpoint",
            AnomalyKind::RecoveryByResponder => "recovery-by-responder",
            AnomalyKind::RecoveryUnlinked => "recovery-unlinked",
            AnomalyKind::InvalidTokenSetting => "invalid-token-setting",
            AnomalyKind::SplitTokens => "split-tokens",
            AnomalyKind::TurnInMonologue => "turn-in-monologue",
            AnomalyKind::ReleaseWithoutTurn => "release-without-turn",
            AnomalyKind::SessionViolation => "session-violation",
            AnomalyKind::ActivityViolation => "activity-violation",
            AnomalyKind::SerialError => "serial-error",
            AnomalyKind::UnexpectedEvent => "unexpected-event",
            AnomalyKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly, at the event that revealed it (or the last event, for
/// those found by `finish`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// What.
    pub kind: AnomalyKind,
    /// Event seq.
    pub seq: u64,
    /// Event time.
    pub time_ns: u64,
    /// The side whose behaviour is at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Side>,
    /// Human-readable explanation.
    pub detail: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {}", self.kind, self.seq)?;
        if let Some(by) = self.by {
            write!(f, " by {by}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What one `observe` call produced (no allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Holder after the event.
    pub turn: TurnHolder,
    /// Indices into `anomalies()` of the anomalies this event raised.
    pub anomalies: std::ops::Range<usize>,
}

/// One timeline row: `{seq, time_ns, from, event, turn}` plus the kinds of
/// anomaly raised by that event, when any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRow {
    /// Association, when the row comes from an [`AssociationLinker`](super::AssociationLinker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assoc: Option<AssocId>,
    /// Event seq.
    pub seq: u64,
    /// Event time.
    pub time_ns: u64,
    /// Sender.
    pub from: Side,
    /// Short event name (`GTC`, `PT`, `T-RST` ...).
    pub event: &'static str,
    /// Holder after the event.
    pub turn: TurnHolder,
    /// Anomalies raised by this event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<AnomalyKind>,
}

/// The properties the simulator and the conformance verdicts check; each
/// fails exactly when the tracker recorded one of its anomaly kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Never two holders (turn-and-recovery.md §4.1).
    OneHolder,
    /// Only the token owner sends holder-only SPDUs and only a non-owner
    /// asks (§4.2).
    OnlyHolderSends,
    /// After recovery the Token Setting's holder acts as holder (§4.5).
    HolderAfterRecovery,
    /// Every transfer confirmed exactly once, never delivered twice (§4.9-10).
    ExactlyOnce,
    /// An idle holder answers a please (§4.6).
    PleaseAnswered,
}

impl Invariant {
    /// All of them.
    pub const ALL: [Invariant; 5] = [
        Invariant::OneHolder,
        Invariant::OnlyHolderSends,
        Invariant::HolderAfterRecovery,
        Invariant::ExactlyOnce,
        Invariant::PleaseAnswered,
    ];

    /// The anomaly kinds that break it.
    #[must_use]
    pub const fn kinds(self) -> &'static [AnomalyKind] {
        match self {
            Invariant::OneHolder => &[AnomalyKind::TwoHolders],
            Invariant::OnlyHolderSends => &[AnomalyKind::DataWithoutTurn, AnomalyKind::PleaseFromHolder],
            Invariant::HolderAfterRecovery => &[AnomalyKind::TurnLost],
            Invariant::ExactlyOnce => &[AnomalyKind::TransferLost, AnomalyKind::TransferDuplicated],
            Invariant::PleaseAnswered => &[AnomalyKind::PleaseUnanswered],
        }
    }

    /// Kebab-case name (`one-holder`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Invariant::OneHolder => "one-holder",
            Invariant::OnlyHolderSends => "only-holder-sends",
            Invariant::HolderAfterRecovery => "holder-after-recovery",
            Invariant::ExactlyOnce => "exactly-once",
            Invariant::PleaseAnswered => "please-answered",
        }
    }
}
