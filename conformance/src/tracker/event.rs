//! The tracker's input: plain data, independent of the codec's types.
//!
//! Whoever maps decoded PDU stacks to [`TurnEvent`]s (the capture timeline,
//! the simulator, the conformance runner) resolves the ASN.1 DEFAULTs of the
//! RTSE APDUs before building an event: `None` in a [`Connect`] or [`Accept`]
//! field means "not known" (the user data could not be decoded, or the
//! capture does not show it), never "absent on the wire, hence DEFAULT".
//! The one exception is `token_setting`, where `None` means the session
//! Token Setting Item (PI 26) was absent: what that implies is the tracker's
//! decision (see [`TrackerConfig::absent_token_setting`](super::TrackerConfig)).

use serde::{Serialize, Serializer};
use std::fmt;

/// The two ends of one association. The association-initiator is the side
/// that sent CN; the mapping decides this once per transport connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// Sent CN (RT-OPEN request).
    Initiator,
    /// Answered with AC/RF.
    Responder,
}

impl Side {
    /// The other side.
    #[must_use]
    pub const fn peer(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }

    /// `"initiator"` / `"responder"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Side::Initiator => "initiator",
            Side::Responder => "responder",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Side::Initiator => 0,
            Side::Responder => 1,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One Turn-relevant event of one association, as observed (capture frame,
/// simulator trace entry, PDU exchanged with an IUT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Frame number or PDU index; only reported back, never interpreted
    /// (events must simply be fed in observation order).
    pub seq: u64,
    /// Observation time in nanoseconds from any fixed origin. Used only for
    /// the please-unanswered time bound; 0 everywhere disables that bound in
    /// effect.
    pub time_ns: u64,
    /// Which side sent it (for transport events: which side's stream).
    pub from: Side,
    /// What was observed.
    pub event: TurnEvent,
}

/// How a transport connection ended, as far as the observer can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseHow {
    /// TCP FIN (orderly close; a loss unless the session was released first).
    Fin,
    /// TCP RST.
    Rst,
    /// The capture ends with the connection still open: observation stops,
    /// the association is not known to be lost.
    Eof,
    /// The capture lost data in this connection (octets of one direction
    /// were not captured): the holder is `unknown` from here. The
    /// connection itself may go on: the next event resumes observation as
    /// if the capture started there (token positions, give, please and
    /// activity forgotten until behaviour reveals them); transfers started
    /// before the gap are not judged lost (their AEA may be in it).
    Gap,
}

/// RTORQ dialogueMode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialogue {
    /// Only the initiator ever holds the Turn; no please/give.
    Monologue,
    /// Two-way alternate (what P1 uses).
    Twa,
}

/// RTSE mode of the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// X.228 normal mode (ACSE + presentation).
    Normal,
    /// X.410-1984 mode (RTS PDUs directly in session user data).
    #[serde(rename = "x410")]
    X410,
}

/// The octets of one connection reference ([`ConnRef`]), held in place
/// up to [`RefOctets::INLINE`] octets (every reference seen in practice: a
/// calling SS-user reference like `MTA-A/0001`, a 13-octet UTCTime), on
/// the heap beyond. A capture's timeline builds a CN's references on its
/// decoding thread and frees them on its tracking thread, and the tracker
/// copies them into what a recovery inherits: three allocations each, most
/// of them freed across threads (glibc's slow path), before they were held
/// in place.
///
/// It is the octets as a slice for every purpose: equality, order, hash
/// and `Debug` are the slice's (those of the `Vec<u8>` it replaced, so
/// hash-keyed indexes are unchanged), and it dereferences to `[u8]`.
#[derive(Clone)]
pub struct RefOctets(RefRepr);

#[derive(Clone)]
enum RefRepr {
    Inline { len: u8, buf: [u8; RefOctets::INLINE] },
    Heap(Box<[u8]>),
}

impl RefOctets {
    /// Octets held in place (the rest of the value's 32 octets are its
    /// length and variant).
    pub const INLINE: usize = 30;

    /// Held in place, not on the heap (for tests).
    #[must_use]
    pub fn is_inline(&self) -> bool {
        matches!(self.0, RefRepr::Inline { .. })
    }

    /// The octets.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            RefRepr::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or_default(),
            RefRepr::Heap(b) => b,
        }
    }
}

impl Default for RefOctets {
    fn default() -> Self {
        RefOctets(RefRepr::Inline { len: 0, buf: [0; RefOctets::INLINE] })
    }
}

impl From<&[u8]> for RefOctets {
    fn from(octets: &[u8]) -> Self {
        let mut buf = [0u8; RefOctets::INLINE];
        match (buf.get_mut(..octets.len()), u8::try_from(octets.len())) {
            (Some(to), Ok(len)) => {
                to.copy_from_slice(octets);
                RefOctets(RefRepr::Inline { len, buf })
            }
            _ => RefOctets(RefRepr::Heap(octets.into())),
        }
    }
}

impl<const N: usize> From<&[u8; N]> for RefOctets {
    fn from(octets: &[u8; N]) -> Self {
        RefOctets::from(&octets[..])
    }
}

impl From<Vec<u8>> for RefOctets {
    fn from(octets: Vec<u8>) -> Self {
        RefOctets::from(&octets[..])
    }
}

impl std::ops::Deref for RefOctets {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for RefOctets {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for RefOctets {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for RefOctets {}

impl PartialEq<[u8]> for RefOctets {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialOrd for RefOctets {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RefOctets {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::hash::Hash for RefOctets {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for RefOctets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

/// A session connection's identity: the Connection Identifier PGI of a CN
/// (PI 10 calling SS-user reference, PI 11 common reference, PI 12
/// additional reference information), which is what RTORQ/PConnect
/// `recover` and the AR Linking Information quote.
///
/// Values are compared as octets (the mapping passes the OCTET STRING /
/// T61String / UTCTime *contents*); see [`ConnRef::matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnRef {
    /// Calling SS-user reference.
    pub calling: RefOctets,
    /// Common reference (a UTCTime string in practice).
    pub common: RefOctets,
    /// Additional reference information, if present.
    pub additional: Option<RefOctets>,
}

impl ConnRef {
    /// Convenience constructor from text.
    #[must_use]
    pub fn new(calling: &str, common: &str) -> Self {
        ConnRef { calling: calling.as_bytes().into(), common: common.as_bytes().into(), additional: None }
    }

    /// Does a quoted reference (`self`, from a recover / Linking
    /// Information) name the connection identified by `actual`? Calling and
    /// common references must be equal octet for octet; the additional
    /// reference is compared only when both carry one (decision: a quote
    /// that drops the optional part still names the same connection).
    #[must_use]
    pub fn matches(&self, actual: &ConnRef) -> bool {
        self.calling == actual.calling
            && self.common == actual.common
            && match (&self.additional, &actual.additional) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// Renders octets as text when they are printable ASCII, else as hex.
pub(crate) fn render_octets(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        let mut s = String::with_capacity(2 + 2 * bytes.len());
        s.push_str("0x");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Display for ConnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", render_octets(&self.calling), render_octets(&self.common))?;
        if let Some(a) = &self.additional {
            write!(f, "+{}", render_octets(a))?;
        }
        Ok(())
    }
}

impl Serialize for ConnRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let n = if self.additional.is_some() { 3 } else { 2 };
        let mut st = s.serialize_struct("ConnRef", n)?;
        st.serialize_field("calling", &render_octets(&self.calling))?;
        st.serialize_field("common", &render_octets(&self.common))?;
        if let Some(a) = &self.additional {
            st.serialize_field("additional", &render_octets(a))?;
        }
        st.end()
    }
}

/// A session Activity Identifier (PI 41, at most 6 octets on the wire;
/// RTSE puts a BER INTEGER there). Stored inline (no allocation), `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivityId {
    len: u8,
    bytes: [u8; ActivityId::CAPACITY],
}

impl ActivityId {
    /// Longest identifier kept (X.225 allows 6 octets; 16 leaves room for
    /// a BER-encoded u64 and for non-conforming peers).
    pub const CAPACITY: usize = 16;

    /// From the PI 41 value octets; `None` when longer than
    /// [`Self::CAPACITY`] (the mapping should then report `Malformed`).
    #[must_use]
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() > Self::CAPACITY {
            return None;
        }
        let mut bytes = [0u8; Self::CAPACITY];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(ActivityId { len: u8::try_from(b.len()).ok()?, bytes })
    }

    /// The identifier RTSE implementations use: a BER INTEGER TLV holding
    /// `n` (ISODE numbers transfers 0, 1, 2 ...), e.g. `02 01 01` for 1.
    #[must_use]
    pub fn number(n: u64) -> Self {
        let be = n.to_be_bytes();
        // Minimal two's-complement content octets of a non-negative integer.
        let mut start = 0;
        while start < 7 {
            let (Some(&cur), Some(&next)) = (be.get(start), be.get(start + 1)) else {
                break;
            };
            if cur == 0 && next & 0x80 == 0 {
                start += 1;
            } else {
                break;
            }
        }
        let content = be.get(start..).unwrap_or(&[]);
        let needs_pad = content.first().is_some_and(|b| b & 0x80 != 0);
        let clen = content.len() + usize::from(needs_pad);
        let mut bytes = [0u8; Self::CAPACITY];
        bytes[0] = 0x02;
        bytes[1] = clen as u8; // <= 9
        let mut i = 2;
        if needs_pad {
            bytes[i] = 0;
            i += 1;
        }
        for &b in content {
            if let Some(slot) = bytes.get_mut(i) {
                *slot = b;
            }
            i += 1;
        }
        ActivityId { len: (2 + clen) as u8, bytes }
    }

    /// The octets.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The number, when the octets are a short non-negative BER INTEGER.
    #[must_use]
    pub fn as_number(&self) -> Option<u64> {
        let b = self.as_bytes();
        let (&tag, rest) = b.split_first()?;
        let (&len, content) = rest.split_first()?;
        if tag != 0x02 || usize::from(len) != content.len() || content.is_empty() || content.len() > 9 {
            return None;
        }
        if content.first().is_some_and(|b| b & 0x80 != 0) {
            return None;
        }
        let mut v: u64 = 0;
        for &c in content {
            v = v.checked_mul(256)?.checked_add(u64::from(c))?;
        }
        Some(v)
    }
}

impl fmt::Display for ActivityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_number() {
            Some(n) => write!(f, "{n}"),
            None => f.write_str(&render_octets(self.as_bytes())),
        }
    }
}

impl fmt::Debug for ActivityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActivityId({self})")
    }
}

impl Serialize for ActivityId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// CN: RT-OPEN request, or a recovery attempt when `recover` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Connect {
    /// Token Setting Item (PI 26) raw octet; `None` = item absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_setting: Option<u8>,
    /// This connection's Connection Identifier PGI (what a later recovery
    /// quotes), if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_ref: Option<ConnRef>,
    /// RTORQ/PConnect `connectionData = recover`: the lost connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover: Option<ConnRef>,
    /// Effective dialogueMode (DEFAULT monologue applied by the mapping);
    /// `None` = not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialogue: Option<Dialogue>,
    /// RTSE mode; `None` = not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Proposed checkpointSize (units of 1024 octets; DEFAULT 0 applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u32>,
    /// Proposed windowSize (DEFAULT 3 applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_size: Option<u32>,
    /// Session User Requirements (PI 20) if present: decides which tokens
    /// exist. `None` = assume RTSE's 0x0249 (data, minor-sync, activity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_requirements: Option<u16>,
}

/// AC: RT-OPEN accepted (or recovery accepted when `recover`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accept {
    /// Token Setting Item (PI 26) raw octet; `None` = item absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_setting: Option<u8>,
    /// RTOAC/PAccept `connectionDataAC` is `recover`.
    pub recover: bool,
    /// Accepted checkpointSize (DEFAULT 0 applied); `None` = not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u32>,
    /// Accepted windowSize (DEFAULT 3 applied); `None` = not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_size: Option<u32>,
    /// Session User Requirements as accepted (PI 20), if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_requirements: Option<u16>,
}

/// AR: S-ACTIVITY-RESUME.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resume {
    /// Linking Information: the old connection's references, when the
    /// activity was started on another (lost) connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_conn: Option<ConnRef>,
    /// Linking Information: old activity identifier.
    pub old_id: ActivityId,
    /// Linking Information: serial number to resume from (the last
    /// checkpoint the sender believes confirmed).
    pub serial: u32,
    /// The new activity identifier.
    pub new_id: ActivityId,
}

/// Everything the tracker understands. JSON: `{"event": "GTC", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum TurnEvent {
    /// A transport connection for this association came up (CR/CC, or the
    /// TCP handshake).
    #[serde(rename = "T-OPEN")]
    TransportOpen,
    /// The transport connection ended.
    #[serde(rename = "T-CLOSE")]
    TransportClosed {
        /// How.
        how: CloseHow,
    },
    /// CN (+ RTORQ / PConnect). Boxed, as is [`Resume`]: the two
    /// connection references made every event some 190 octets, copied
    /// several times per event by a timeline; one CN per association
    /// pays for the allocation.
    #[serde(rename = "CN")]
    Connect(Box<Connect>),
    /// AC (+ RTOAC / PAccept).
    #[serde(rename = "AC")]
    Accept(Accept),
    /// RF (+ RTORJ / PRefuse).
    #[serde(rename = "RF")]
    Refuse {
        /// Session reason code or RTSE refuseReason, whichever is known.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<i64>,
        /// A recovery attempt was refused (refuseReason cannotRecover(1),
        /// or the refusal answers a recovery CN).
        recovery_refused: bool,
    },
    /// PT: S-TOKEN-PLEASE (RT-TURN-PLEASE when it carries an RTTP).
    #[serde(rename = "PT")]
    PleaseTokens {
        /// Token Item (PI 16) bits.
        tokens: u8,
        /// RTTP priority (absent = 0, highest; 0 asks for the Turn to close).
        #[serde(skip_serializing_if = "Option::is_none")]
        priority: Option<i64>,
    },
    /// GT with a Token Item (S-TOKEN-GIVE). The empty concatenation prefix
    /// `01 00` must not be reported (tokens 0 is ignored).
    #[serde(rename = "GT")]
    GiveTokens {
        /// Token Item bits.
        tokens: u8,
    },
    /// GTC: S-CONTROL-GIVE = RT-TURN-GIVE.
    #[serde(rename = "GTC")]
    GiveControl,
    /// GTA: the receiving SPM acknowledges GTC.
    #[serde(rename = "GTA")]
    GiveControlAck,
    /// AS: an RT-TRANSFER starts.
    #[serde(rename = "AS")]
    ActivityStart {
        /// Activity identifier.
        id: ActivityId,
    },
    /// AR: an interrupted or lost transfer resumes.
    #[serde(rename = "AR")]
    ActivityResume(Box<Resume>),
    /// DT: one segment of the APDU.
    #[serde(rename = "DT")]
    Data {
        /// User-information octets.
        octets: usize,
    },
    /// MIP: checkpoint.
    #[serde(rename = "MIP")]
    MinorSync {
        /// Serial number.
        serial: u32,
        /// Explicit confirmation required (no Sync Type Item 0x01).
        confirm_required: bool,
    },
    /// MIA: checkpoint confirmed (data secured up to `serial`).
    #[serde(rename = "MIA")]
    MinorSyncAck {
        /// Serial number.
        serial: u32,
    },
    /// AE: the APDU is complete.
    #[serde(rename = "AE")]
    ActivityEnd {
        /// Serial number.
        serial: u32,
    },
    /// AEA: the receiver delivered the APDU; positive RT-TRANSFER cnf.
    #[serde(rename = "AEA")]
    ActivityEndAck {
        /// Serial number.
        serial: u32,
    },
    /// AI: transfer interrupted (kept for a later AR).
    #[serde(rename = "AI")]
    ActivityInterrupt {
        /// Reason code (PI 50).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<u8>,
    },
    /// AIA.
    #[serde(rename = "AIA")]
    ActivityInterruptAck,
    /// AD: transfer discarded (negative RT-TRANSFER cnf).
    #[serde(rename = "AD")]
    ActivityDiscard {
        /// Reason code (PI 50).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<u8>,
    },
    /// ADA.
    #[serde(rename = "ADA")]
    ActivityDiscardAck,
    /// ED: S-U-EXCEPTION-REPORT by the receiver (or ER by the provider).
    #[serde(rename = "ED")]
    ExceptionReport {
        /// Reason code.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<u8>,
    },
    /// The P1 label (MTS identifier) of the APDU being transferred by
    /// `from`, once the mapping has decoded it (during or after the
    /// activity). Attaches to `from`'s current transfer, else its latest.
    #[serde(rename = "LABEL")]
    TransferLabel {
        /// Rendered MTSIdentifier, e.g. `message /C=GB/A= /P=ACME/;MSG-0001`.
        label: String,
    },
    /// FN: S-RELEASE request (RT-CLOSE).
    #[serde(rename = "FN")]
    Release,
    /// DN: release accepted.
    #[serde(rename = "DN")]
    Disconnect,
    /// NF: release refused.
    #[serde(rename = "NF")]
    NotFinished,
    /// AB (+ ABRT/RTAB or AbortInformation).
    #[serde(rename = "AB")]
    Abort {
        /// RT-U-ABORT (user) rather than a provider/RTPM abort. A provider
        /// abort counts as a loss of the connection (recovery may follow).
        user: bool,
        /// RTAB abortReason, if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<i64>,
    },
    /// AA.
    #[serde(rename = "AA")]
    AbortAccept,
    /// Something that could not be decoded far enough to classify.
    #[serde(rename = "MALFORMED")]
    Malformed {
        /// What went wrong (the codec error's Display).
        detail: String,
    },
    /// An SPDU with no bearing on the Turn in RTSE (TD, CD, RS, MAP, ...);
    /// recorded in the timeline only.
    #[serde(rename = "OTHER")]
    Other {
        /// Its abbreviation.
        name: &'static str,
    },
}

impl TurnEvent {
    /// Short name for timelines: the SPDU abbreviation (`GTC`, `PT`, ...),
    /// `T-OPEN`, `T-FIN` / `T-RST` / `T-EOF` / `T-GAP`, `LABEL`, `MALFORMED`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            TurnEvent::TransportOpen => "T-OPEN",
            TurnEvent::TransportClosed { how } => match how {
                CloseHow::Fin => "T-FIN",
                CloseHow::Rst => "T-RST",
                CloseHow::Eof => "T-EOF",
                CloseHow::Gap => "T-GAP",
            },
            TurnEvent::Connect(_) => "CN",
            TurnEvent::Accept(_) => "AC",
            TurnEvent::Refuse { .. } => "RF",
            TurnEvent::PleaseTokens { .. } => "PT",
            TurnEvent::GiveTokens { .. } => "GT",
            TurnEvent::GiveControl => "GTC",
            TurnEvent::GiveControlAck => "GTA",
            TurnEvent::ActivityStart { .. } => "AS",
            TurnEvent::ActivityResume(_) => "AR",
            TurnEvent::Data { .. } => "DT",
            TurnEvent::MinorSync { .. } => "MIP",
            TurnEvent::MinorSyncAck { .. } => "MIA",
            TurnEvent::ActivityEnd { .. } => "AE",
            TurnEvent::ActivityEndAck { .. } => "AEA",
            TurnEvent::ActivityInterrupt { .. } => "AI",
            TurnEvent::ActivityInterruptAck => "AIA",
            TurnEvent::ActivityDiscard { .. } => "AD",
            TurnEvent::ActivityDiscardAck => "ADA",
            TurnEvent::ExceptionReport { .. } => "ED",
            TurnEvent::TransferLabel { .. } => "LABEL",
            TurnEvent::Release => "FN",
            TurnEvent::Disconnect => "DN",
            TurnEvent::NotFinished => "NF",
            TurnEvent::Abort { .. } => "AB",
            TurnEvent::AbortAccept => "AA",
            TurnEvent::Malformed { .. } => "MALFORMED",
            TurnEvent::Other { name } => name,
        }
    }
}
