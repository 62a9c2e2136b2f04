//! X.228 RTSE APDUs (normal mode), mapped by hand on [`crate::ber`].
//!
//! ```text
//! RTSE-apdus ::= CHOICE {
//!   rtorq-apdu [16] IMPLICIT RTORQapdu,   -- b0
//!   rtoac-apdu [17] IMPLICIT RTOACapdu,   -- b1
//!   rtorj-apdu [18] IMPLICIT RTORJapdu,   -- b2
//!   rttp-apdu  RTTPapdu,                  -- 02 (INTEGER priority)
//!   rttr-apdu  RTTRapdu,                  -- 04 / 24 (OCTET STRING)
//!   rtab-apdu  [22] IMPLICIT RTABapdu }   -- b6
//! ```
//!
//! The SET bodies (RTORQ, RTOAC, RTORJ, RTAB members) are parsed by
//! functions that take the already-read outer [`Tlv`] and ignore its tag,
//! because the same members appear in X.410-1984 mode under other tags
//! (`[1] IMPLICIT SET` inside PConnect/PAccept, a bare SET as PRefuse and
//! AbortInformation): see [`crate::x410`].
//!
//! Reading accepts SET members in any order (a repeated member is an error
//! at its offset; a member the ASN.1 does not define is an error too, the
//! types have no extension marker), indefinite lengths, constructed strings,
//! and explicitly encoded DEFAULT values, which are kept as `Some(v)` so
//! that they are written again; accessors give the effective value
//! ([`Rtorq::window_size`] etc.). Writing emits definite lengths, members in
//! definition order, primitive strings.
//!
//! Parsing an RTTP or a primitive RTTR allocates nothing.

use crate::ber::{
    int_content, len_len, write_bits, write_int, write_prim, write_tlv, BitString, Class, Octets, Reader, Tag, Tlv,
    INTEGER, OCTET_STRING, T61_STRING, UTC_TIME,
};
use crate::error::{Error, Found, Layer, Result};

/// `[16] IMPLICIT RTORQapdu`.
pub const TAG_RTORQ: Tag = Tag::ctx_c(16);
/// `[17] IMPLICIT RTOACapdu`.
pub const TAG_RTOAC: Tag = Tag::ctx_c(17);
/// `[18] IMPLICIT RTORJapdu`.
pub const TAG_RTORJ: Tag = Tag::ctx_c(18);
/// `[22] IMPLICIT RTABapdu`.
pub const TAG_RTAB: Tag = Tag::ctx_c(22);

/// Default of `checkpointSize` (no checkpointing).
pub const DEFAULT_CHECKPOINT_SIZE: i64 = 0;
/// Default of `windowSize`.
pub const DEFAULT_WINDOW_SIZE: i64 = 3;

// ---------------------------------------------------------------------------
// Named-integer types.

/// Defines an INTEGER-with-named-numbers type: named variants plus
/// `Other(i64)` so that unknown values round trip. Equality and hashing go
/// by the numeric value (`Other(1) == Twa`), so that `parse(emit(x)) == x`
/// holds for every constructible value. JSON: the name as a string when the
/// value is named, the number otherwise.
macro_rules! int_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:literal => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy)]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A value the standard does not name (kept as received).
            Other(i64),
        }
        impl $name {
            /// From the encoded INTEGER value.
            pub const fn from_i64(v: i64) -> Self {
                match v {
                    $($val => $name::$var,)*
                    v => $name::Other(v),
                }
            }
            /// The encoded INTEGER value.
            pub const fn to_i64(self) -> i64 {
                match self {
                    $($name::$var => $val,)*
                    $name::Other(v) => v,
                }
            }
            /// The ASN.1 name of the value, if it has one.
            pub const fn as_str(self) -> Option<&'static str> {
                match $name::from_i64(self.to_i64()) {
                    $($name::$var => Some($s),)*
                    $name::Other(_) => None,
                }
            }
        }
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.to_i64() == other.to_i64()
            }
        }
        impl Eq for $name {}
        impl core::hash::Hash for $name {
            fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
                self.to_i64().hash(h)
            }
        }
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.as_str() {
                    Some(s) => write!(f, "{s}({})", self.to_i64()),
                    None => write!(f, "{}", self.to_i64()),
                }
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
                match self.as_str() {
                    Some(n) => s.serialize_str(n),
                    None => s.serialize_i64(self.to_i64()),
                }
            }
        }
    };
}
pub(crate) use int_enum;

int_enum! {
    /// RTORQ `dialogueMode` (DEFAULT monologue).
    DialogueMode {
        /// Only the association-initiator ever holds the Turn.
        Monologue = 0 => "monologue",
        /// Two-way alternate (what P1 uses).
        Twa = 1 => "twa",
    }
}

int_enum! {
    /// RTORJ / PRefuse `refuseReason` (X.410 names `rtsBusy` just `busy`).
    RefuseReason {
        RtsBusy = 0 => "rtsBusy",
        CannotRecover = 1 => "cannotRecover",
        ValidationFailure = 2 => "validationFailure",
        UnacceptableDialogueMode = 3 => "unacceptableDialogueMode",
    }
}

int_enum! {
    /// RTAB / AbortInformation `abortReason`.
    AbortReason {
        LocalSystemProblem = 0 => "localSystemProblem",
        /// `reflectedParameter` says which.
        InvalidParameter = 1 => "invalidParameter",
        UnrecognizedActivity = 2 => "unrecognizedActivity",
        TemporaryProblem = 3 => "temporaryProblem",
        ProtocolError = 4 => "protocolError",
        /// Provider abort, normal mode only.
        PermanentProblem = 5 => "permanentProblem",
        /// User abort, normal mode only.
        UserError = 6 => "userError",
        TransferCompleted = 7 => "transferCompleted",
    }
}

// ---------------------------------------------------------------------------
// Types.

/// One RTSE APDU. JSON: `{"pdu": "RTORQ", ...}`; RTTP is
/// `{"pdu": "RTTP", "priority": n}`, RTTR `{"pdu": "RTTR", "len": n, "data": hex}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtseApdu<'a> {
    Rtorq(Rtorq<'a>),
    Rtoac(Rtoac<'a>),
    Rtorj(Rtorj<'a>),
    /// RT-TURN-PLEASE priority (0 = most urgent).
    Rttp(i64),
    /// One segment of a transfer (the OCTET STRING contents).
    Rttr(Octets<'a>),
    Rtab(Rtab<'a>),
}

/// RT-OPEN request (`RTORQapdu`); in X.410 mode the `pUserData` of PConnect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rtorq<'a> {
    /// `[0]` DEFAULT 0; `Some` when sent, even if 0. See [`Rtorq::checkpoint_size`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<i64>,
    /// `[1]` DEFAULT 3. See [`Rtorq::window_size`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_size: Option<i64>,
    /// `[2]` DEFAULT monologue. See [`Rtorq::dialogue_mode`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialogue_mode: Option<DialogueMode>,
    /// `[3] connectionDataRQ`.
    pub connection_data: ConnectionData<'a>,
    /// `[4]`, X.410-1984 mode only (1 = P1; ISODE sends its port number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_protocol: Option<i64>,
}

/// RT-OPEN accept (`RTOACapdu`); in X.410 mode the `pUserData` of PAccept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rtoac<'a> {
    /// `[0]` DEFAULT 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<i64>,
    /// `[1]` DEFAULT 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_size: Option<i64>,
    /// `[2] connectionDataAC`.
    pub connection_data: ConnectionData<'a>,
}

/// RT-OPEN refuse (`RTORJapdu`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Rtorj<'a> {
    /// `[0]`, X.410 mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_reason: Option<RefuseReason>,
    /// `[1] userDataRJ`: the raw TLV inside the explicit tag (P1: `b2 {MTABindError}`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
}

/// Abort (`RTABapdu`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Rtab<'a> {
    /// `[0]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<AbortReason>,
    /// `[1]`, with `invalidParameter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflected_parameter: Option<BitString<'a>>,
    /// `[2] userdataAB`: the raw TLV inside the explicit tag (normal mode, userError).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
}

/// `ConnectionData ::= CHOICE { open [0] ANY, recover [1] IMPLICIT SessionConnectionIdentifier }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionData<'a> {
    /// The raw TLV of the RTSE-user data inside `[0]` (P1: the bind
    /// argument/result, `b0 ..`/`b1 ..` in normal mode, `a1 ..` in X.410
    /// mode). `None`: no user data, sent as `80 00` (`[0] IMPLICIT NULL`).
    /// Use [`offset_in`] to locate it in the parsed input.
    #[serde(serialize_with = "ser_opt_hex")]
    Open(Option<&'a [u8]>),
    /// Recovery of the session connection it identifies.
    Recover(SessionConnectionIdentifier<'a>),
}

/// The identifier of the lost session connection a recovery refers to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionConnectionIdentifier<'a> {
    pub calling_ss_user_reference: SsUserRef<'a>,
    /// UTCTime text, e.g. `250101115500Z` (kept as sent, not validated).
    pub common_reference: Octets<'a>,
    /// `[0] IMPLICIT T61String OPTIONAL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_reference_information: Option<Octets<'a>>,
}

/// `callingSSuserReference`: T61String in X.410 mode, OCTET STRING in
/// normal mode. Either is accepted in both modes; the variant records which
/// was sent, and is what is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum SsUserRef<'a> {
    #[serde(rename = "t61String")]
    T61String(Octets<'a>),
    #[serde(rename = "octetString")]
    OctetString(Octets<'a>),
}

impl<'a> SsUserRef<'a> {
    /// The reference octets, whatever the string type.
    pub fn value(&self) -> &Octets<'a> {
        match self {
            SsUserRef::T61String(o) | SsUserRef::OctetString(o) => o,
        }
    }
}

impl Rtorq<'_> {
    /// Effective checkpoint size (units of 1024 octets; 0 = no checkpointing).
    pub fn checkpoint_size(&self) -> i64 {
        self.checkpoint_size.unwrap_or(DEFAULT_CHECKPOINT_SIZE)
    }
    /// Effective window size.
    pub fn window_size(&self) -> i64 {
        self.window_size.unwrap_or(DEFAULT_WINDOW_SIZE)
    }
    /// Effective dialogue mode.
    pub fn dialogue_mode(&self) -> DialogueMode {
        self.dialogue_mode.unwrap_or(DialogueMode::Monologue)
    }
}

impl Rtoac<'_> {
    /// Effective checkpoint size (units of 1024 octets; 0 = no checkpointing).
    pub fn checkpoint_size(&self) -> i64 {
        self.checkpoint_size.unwrap_or(DEFAULT_CHECKPOINT_SIZE)
    }
    /// Effective window size.
    pub fn window_size(&self) -> i64 {
        self.window_size.unwrap_or(DEFAULT_WINDOW_SIZE)
    }
}

impl<'a> RtseApdu<'a> {
    /// Standard abbreviation: `"RTORQ"`, `"RTOAC"`, `"RTORJ"`, `"RTTP"`, `"RTTR"`, `"RTAB"`.
    pub const fn name(&self) -> &'static str {
        match self {
            RtseApdu::Rtorq(_) => "RTORQ",
            RtseApdu::Rtoac(_) => "RTOAC",
            RtseApdu::Rtorj(_) => "RTORJ",
            RtseApdu::Rttp(_) => "RTTP",
            RtseApdu::Rttr(_) => "RTTR",
            RtseApdu::Rtab(_) => "RTAB",
        }
    }

    /// The RTSE-user data this APDU carries as a raw TLV, for the next layer
    /// (P1): `open` of RTORQ/RTOAC, `userDataRJ`, `userdataAB`. Locate it in
    /// the parsed input with [`offset_in`].
    pub fn user_data(&self) -> Option<&'a [u8]> {
        match self {
            RtseApdu::Rtorq(r) => r.connection_data.open(),
            RtseApdu::Rtoac(r) => r.connection_data.open(),
            RtseApdu::Rtorj(r) => r.user_data,
            RtseApdu::Rtab(r) => r.user_data,
            RtseApdu::Rttp(_) | RtseApdu::Rttr(_) => None,
        }
    }
}

impl<'a> ConnectionData<'a> {
    /// The raw TLV inside `open [0]`, if this is `open` with user data.
    pub fn open(&self) -> Option<&'a [u8]> {
        match self {
            ConnectionData::Open(d) => *d,
            ConnectionData::Recover(_) => None,
        }
    }
}

/// Offset of `part` within `whole`, when `part` is a sub-slice of it (as
/// every borrowed field of a parsed PDU is of the input it was parsed
/// from). Lets a caller decode e.g. [`ConnectionData::Open`] with the next
/// layer's parser and [`Error::shift`] that parser's errors by the result.
/// `None` if `part` does not lie within `whole`.
pub fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start)
}

impl serde::Serialize for RtseApdu<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(tag = "pdu")]
        enum Ser<'b, 'a> {
            #[serde(rename = "RTORQ")]
            Rtorq(&'b Rtorq<'a>),
            #[serde(rename = "RTOAC")]
            Rtoac(&'b Rtoac<'a>),
            #[serde(rename = "RTORJ")]
            Rtorj(&'b Rtorj<'a>),
            #[serde(rename = "RTTP")]
            Rttp { priority: i64 },
            #[serde(rename = "RTTR")]
            Rttr { len: usize, data: &'b Octets<'a> },
            #[serde(rename = "RTAB")]
            Rtab(&'b Rtab<'a>),
        }
        match self {
            RtseApdu::Rtorq(r) => Ser::Rtorq(r),
            RtseApdu::Rtoac(r) => Ser::Rtoac(r),
            RtseApdu::Rtorj(r) => Ser::Rtorj(r),
            RtseApdu::Rttp(p) => Ser::Rttp { priority: *p },
            RtseApdu::Rttr(d) => Ser::Rttr { len: d.len(), data: d },
            RtseApdu::Rtab(r) => Ser::Rtab(r),
        }
        .serialize(s)
    }
}

pub(crate) fn ser_opt_hex<S: serde::Serializer>(b: &Option<&[u8]>, s: S) -> core::result::Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&crate::hex::encode(b)),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------
// Parsing.

/// Parse one RTSE APDU from the front of `input` (a PDV value); returns it
/// and what follows. Offsets in errors are relative to `input`.
pub fn parse(input: &[u8]) -> Result<(RtseApdu<'_>, &[u8])> {
    let mut r = Reader::new(Layer::Rtse, input);
    let t = r.read("RTSE APDU")?;
    let apdu = parse_tlv(&t)?;
    Ok((apdu, r.rest()))
}

/// Parse one RTSE APDU that must fill `input`.
pub fn parse_exact(input: &[u8]) -> Result<RtseApdu<'_>> {
    let (apdu, rest) = parse(input)?;
    if !rest.is_empty() {
        return Err(Error::new(
            Layer::Rtse,
            input.len() - rest.len(),
            "end of the RTSE APDU",
            Found::Trailing(rest.len()),
        ));
    }
    Ok(apdu)
}

/// Decode an already-read TLV as an RTSE APDU (dispatch on its tag).
pub fn parse_tlv<'a>(t: &Tlv<'a>) -> Result<RtseApdu<'a>> {
    const L: Layer = Layer::Rtse;
    let tag = t.tag;
    Ok(if tag == TAG_RTORQ {
        RtseApdu::Rtorq(parse_rtorq_members(t, L)?)
    } else if tag == TAG_RTOAC {
        RtseApdu::Rtoac(parse_rtoac_members(t, L)?)
    } else if tag == TAG_RTORJ {
        RtseApdu::Rtorj(parse_rtorj_members(t, L)?)
    } else if tag == TAG_RTAB {
        RtseApdu::Rtab(parse_rtab_members(t, L)?)
    } else if tag == INTEGER {
        RtseApdu::Rttp(t.int(L, "RTTPapdu priority INTEGER")?)
    } else if tag.same_type(OCTET_STRING) {
        RtseApdu::Rttr(t.octets(L, "RTTRapdu OCTET STRING")?)
    } else {
        return Err(Error::new(
            L,
            t.offset,
            "RTSE APDU (b0 RTORQ, b1 RTOAC, b2 RTORJ, 02 RTTP, 04 RTTR, b6 RTAB)",
            Found::Tag(tag),
        ));
    })
}

/// Walk the members of the SET whose TLV is `set` (its tag is not looked
/// at, only that it is constructed). Each member's tag is matched on class
/// and number against `tags` (either form: primitive/constructed checks are
/// left to the member's decoder) and `f(index, member)` is called. A member
/// not in `tags`, or one seen before, is an error at its offset.
pub(crate) fn set_members<'a>(
    set: &Tlv<'a>,
    layer: Layer,
    what: &'static str,
    tags: &[Tag],
    mut f: impl FnMut(usize, &Tlv<'a>) -> Result<()>,
) -> Result<()> {
    if !set.tag.constructed {
        return Err(Error::new(layer, set.offset, what, Found::Tag(set.tag)));
    }
    let mut seen: u64 = 0;
    let mut r = set.reader(layer);
    while !r.is_empty() {
        let m = r.read(what)?;
        let Some(i) = tags.iter().position(|t| t.same_type(m.tag)) else {
            return Err(Error::new(layer, m.offset, what, Found::Tag(m.tag)));
        };
        let bit = 1u64 << (i % 64);
        if seen & bit != 0 {
            return Err(Error::new(layer, m.offset, what, Found::Other("a repeated member")));
        }
        seen |= bit;
        f(i, &m)?;
    }
    Ok(())
}

/// The single TLV inside an explicit tag (`[n] ANY`, `[n] CHOICE`): its raw
/// encoding. The explicit tag must be constructed and hold exactly one TLV.
pub(crate) fn explicit_inner<'a>(t: &Tlv<'a>, layer: Layer, what: &'static str) -> Result<Tlv<'a>> {
    if !t.tag.constructed {
        return Err(Error::new(layer, t.offset, what, Found::Tag(t.tag)));
    }
    let mut r = t.reader(layer);
    let inner = r.read(what)?;
    r.finish(what)?;
    Ok(inner)
}

fn missing(layer: Layer, set: &Tlv<'_>, what: &'static str) -> Error {
    Error::new(layer, set.offset, what, Found::Other("a SET without it"))
}

/// The members of an RTORQ SET (normal mode `b0`, X.410 PConnect `[1]`).
pub fn parse_rtorq_members<'a>(set: &Tlv<'a>, layer: Layer) -> Result<Rtorq<'a>> {
    const TAGS: [Tag; 5] = [Tag::ctx(0), Tag::ctx(1), Tag::ctx(2), Tag::ctx_c(3), Tag::ctx(4)];
    let (mut cs, mut ws, mut dm, mut cd, mut ap) = (None, None, None, None, None);
    set_members(set, layer, "RTORQ member [0]..[4], each at most once", &TAGS, |i, m| {
        match i {
            0 => cs = Some(m.int(layer, "checkpointSize [0] INTEGER")?),
            1 => ws = Some(m.int(layer, "windowSize [1] INTEGER")?),
            2 => dm = Some(DialogueMode::from_i64(m.int(layer, "dialogueMode [2] INTEGER")?)),
            3 => cd = Some(parse_connection_data(m, layer)?),
            _ => ap = Some(m.int(layer, "applicationProtocol [4] INTEGER")?),
        }
        Ok(())
    })?;
    let connection_data = cd.ok_or_else(|| missing(layer, set, "connectionDataRQ [3] in RTORQ"))?;
    Ok(Rtorq { checkpoint_size: cs, window_size: ws, dialogue_mode: dm, connection_data, application_protocol: ap })
}

/// The members of an RTOAC SET (normal mode `b1`, X.410 PAccept `[1]`).
pub fn parse_rtoac_members<'a>(set: &Tlv<'a>, layer: Layer) -> Result<Rtoac<'a>> {
    const TAGS: [Tag; 3] = [Tag::ctx(0), Tag::ctx(1), Tag::ctx_c(2)];
    let (mut cs, mut ws, mut cd) = (None, None, None);
    set_members(set, layer, "RTOAC member [0]..[2], each at most once", &TAGS, |i, m| {
        match i {
            0 => cs = Some(m.int(layer, "checkpointSize [0] INTEGER")?),
            1 => ws = Some(m.int(layer, "windowSize [1] INTEGER")?),
            _ => cd = Some(parse_connection_data(m, layer)?),
        }
        Ok(())
    })?;
    let connection_data = cd.ok_or_else(|| missing(layer, set, "connectionDataAC [2] in RTOAC"))?;
    Ok(Rtoac { checkpoint_size: cs, window_size: ws, connection_data })
}

/// The members of an RTORJ SET.
pub fn parse_rtorj_members<'a>(set: &Tlv<'a>, layer: Layer) -> Result<Rtorj<'a>> {
    const TAGS: [Tag; 2] = [Tag::ctx(0), Tag::ctx_c(1)];
    let mut out = Rtorj::default();
    set_members(set, layer, "RTORJ member [0] or [1], each at most once", &TAGS, |i, m| {
        match i {
            0 => out.refuse_reason = Some(RefuseReason::from_i64(m.int(layer, "refuseReason [0] INTEGER")?)),
            _ => out.user_data = Some(explicit_inner(m, layer, "one value in userDataRJ [1]")?.raw),
        }
        Ok(())
    })?;
    Ok(out)
}

/// The members of an RTAB SET (normal mode `b6`; X.410 AbortInformation
/// uses [`crate::x410`], which allows no `[2]`).
pub fn parse_rtab_members<'a>(set: &Tlv<'a>, layer: Layer) -> Result<Rtab<'a>> {
    const TAGS: [Tag; 3] = [Tag::ctx(0), Tag::ctx(1), Tag::ctx_c(2)];
    let mut out = Rtab::default();
    set_members(set, layer, "RTAB member [0]..[2], each at most once", &TAGS, |i, m| {
        match i {
            0 => out.abort_reason = Some(AbortReason::from_i64(m.int(layer, "abortReason [0] INTEGER")?)),
            1 => out.reflected_parameter = Some(m.bits(layer, "reflectedParameter [1] BIT STRING")?),
            _ => out.user_data = Some(explicit_inner(m, layer, "one value in userdataAB [2]")?.raw),
        }
        Ok(())
    })?;
    Ok(out)
}

/// `ConnectionData` from its explicit wrapper (`[3]` in RTORQ, `[2]` in RTOAC).
pub fn parse_connection_data<'a>(wrapper: &Tlv<'a>, layer: Layer) -> Result<ConnectionData<'a>> {
    let c = explicit_inner(wrapper, layer, "one ConnectionData: open [0] or recover [1]")?;
    // `open [0] ANY` is explicit: a constructed [0] holding exactly one
    // value. No user data is `80 00` ([0] IMPLICIT NULL, X.228). An empty
    // constructed `a0 00` is neither and is refused (decision: no peer is
    // known to send it, and accepting it would not re-emit as sent).
    match (c.tag.class, c.tag.number) {
        (Class::Context, 0) if c.tag.constructed => {
            Ok(ConnectionData::Open(Some(explicit_inner(&c, layer, "one user-data value in open [0]")?.raw)))
        }
        (Class::Context, 0) => {
            c.null(layer, "open [0] IMPLICIT NULL (80 00)")?;
            Ok(ConnectionData::Open(None))
        }
        (Class::Context, 1) => Ok(ConnectionData::Recover(parse_session_connection_identifier(&c, layer)?)),
        _ => Err(Error::new(layer, c.offset, "ConnectionData open [0] or recover [1]", Found::Tag(c.tag))),
    }
}

/// `SessionConnectionIdentifier` from its (implicitly tagged) SEQUENCE TLV.
pub fn parse_session_connection_identifier<'a>(seq: &Tlv<'a>, layer: Layer) -> Result<SessionConnectionIdentifier<'a>> {
    if !seq.tag.constructed {
        return Err(Error::new(layer, seq.offset, "recover [1] SessionConnectionIdentifier", Found::Tag(seq.tag)));
    }
    let mut r = seq.reader(layer);
    const WHAT_REF: &str = "callingSSuserReference (14 T61String or 04 OCTET STRING)";
    let at = r.offset();
    let t = r.read(WHAT_REF)?;
    let calling_ss_user_reference = if t.tag.same_type(T61_STRING) {
        SsUserRef::T61String(t.octets(layer, WHAT_REF)?)
    } else if t.tag.same_type(OCTET_STRING) {
        SsUserRef::OctetString(t.octets(layer, WHAT_REF)?)
    } else {
        return Err(Error::new(layer, at, WHAT_REF, Found::Tag(t.tag)));
    };
    const WHAT_CR: &str = "commonReference UTCTime (17)";
    let at = r.offset();
    let t = r.read(WHAT_CR)?;
    if !t.tag.same_type(UTC_TIME) {
        return Err(Error::new(layer, at, WHAT_CR, Found::Tag(t.tag)));
    }
    let common_reference = t.octets(layer, WHAT_CR)?;
    const WHAT_ADD: &str = "additionalReferenceInformation [0] T61String";
    let additional_reference_information = match r.peek_tag() {
        Some(tag) if tag.same_type(Tag::ctx(0)) => Some(r.read(WHAT_ADD)?.octets(layer, WHAT_ADD)?),
        _ => None,
    };
    r.finish("end of SessionConnectionIdentifier")?;
    Ok(SessionConnectionIdentifier { calling_ss_user_reference, common_reference, additional_reference_information })
}

// ---------------------------------------------------------------------------
// Writing.

/// Append the canonical encoding of `apdu` to `out`.
pub fn emit(apdu: &RtseApdu<'_>, out: &mut Vec<u8>) {
    match apdu {
        RtseApdu::Rtorq(r) => write_tlv(out, TAG_RTORQ, |o| emit_rtorq_members(r, o)),
        RtseApdu::Rtoac(r) => write_tlv(out, TAG_RTOAC, |o| emit_rtoac_members(r, o)),
        RtseApdu::Rtorj(r) => write_tlv(out, TAG_RTORJ, |o| emit_rtorj_members(r, o)),
        RtseApdu::Rttp(p) => write_int(out, INTEGER, *p),
        RtseApdu::Rttr(d) => write_prim(out, OCTET_STRING, d),
        RtseApdu::Rtab(r) => write_tlv(out, TAG_RTAB, |o| emit_rtab_members(r, o)),
    }
}

/// Octets [`emit`] writes for `apdu`.
pub fn encoded_len(apdu: &RtseApdu<'_>) -> usize {
    match apdu {
        RtseApdu::Rtorq(r) => tlv_len(TAG_RTORQ, rtorq_members_len(r)),
        RtseApdu::Rtoac(r) => tlv_len(TAG_RTOAC, rtoac_members_len(r)),
        RtseApdu::Rtorj(r) => tlv_len(TAG_RTORJ, rtorj_members_len(r)),
        RtseApdu::Rttp(p) => int_len(INTEGER, *p),
        RtseApdu::Rttr(d) => tlv_len(OCTET_STRING, d.len()),
        RtseApdu::Rtab(r) => tlv_len(TAG_RTAB, rtab_members_len(r)),
    }
}

/// The contents of an RTORQ SET, members in definition order.
pub fn emit_rtorq_members(r: &Rtorq<'_>, out: &mut Vec<u8>) {
    if let Some(v) = r.checkpoint_size {
        write_int(out, Tag::ctx(0), v);
    }
    if let Some(v) = r.window_size {
        write_int(out, Tag::ctx(1), v);
    }
    if let Some(v) = r.dialogue_mode {
        write_int(out, Tag::ctx(2), v.to_i64());
    }
    write_tlv(out, Tag::ctx_c(3), |o| emit_connection_data(&r.connection_data, o));
    if let Some(v) = r.application_protocol {
        write_int(out, Tag::ctx(4), v);
    }
}

/// The contents of an RTOAC SET, members in definition order.
pub fn emit_rtoac_members(r: &Rtoac<'_>, out: &mut Vec<u8>) {
    if let Some(v) = r.checkpoint_size {
        write_int(out, Tag::ctx(0), v);
    }
    if let Some(v) = r.window_size {
        write_int(out, Tag::ctx(1), v);
    }
    write_tlv(out, Tag::ctx_c(2), |o| emit_connection_data(&r.connection_data, o));
}

/// The contents of an RTORJ SET.
pub fn emit_rtorj_members(r: &Rtorj<'_>, out: &mut Vec<u8>) {
    if let Some(v) = r.refuse_reason {
        write_int(out, Tag::ctx(0), v.to_i64());
    }
    if let Some(d) = r.user_data {
        write_tlv(out, Tag::ctx_c(1), |o| o.extend_from_slice(d));
    }
}

/// The contents of an RTAB SET.
pub fn emit_rtab_members(r: &Rtab<'_>, out: &mut Vec<u8>) {
    if let Some(v) = r.abort_reason {
        write_int(out, Tag::ctx(0), v.to_i64());
    }
    if let Some(b) = &r.reflected_parameter {
        write_bits(out, Tag::ctx(1), b);
    }
    if let Some(d) = r.user_data {
        write_tlv(out, Tag::ctx_c(2), |o| o.extend_from_slice(d));
    }
}

/// The ConnectionData CHOICE (without the explicit wrapper around it).
pub fn emit_connection_data(c: &ConnectionData<'_>, out: &mut Vec<u8>) {
    match c {
        ConnectionData::Open(None) => write_prim(out, Tag::ctx(0), &[]),
        ConnectionData::Open(Some(d)) => write_tlv(out, Tag::ctx_c(0), |o| o.extend_from_slice(d)),
        ConnectionData::Recover(s) => write_tlv(out, Tag::ctx_c(1), |o| {
            let (tag, v) = match &s.calling_ss_user_reference {
                SsUserRef::T61String(v) => (T61_STRING, v),
                SsUserRef::OctetString(v) => (OCTET_STRING, v),
            };
            write_prim(o, tag, v);
            write_prim(o, UTC_TIME, &s.common_reference);
            if let Some(a) = &s.additional_reference_information {
                write_prim(o, Tag::ctx(0), a);
            }
        }),
    }
}

// Lengths, mirroring the writers above.

pub(crate) const fn tag_len(tag: Tag) -> usize {
    if tag.number < 31 {
        return 1;
    }
    let mut n = tag.number >> 7;
    let mut k = 2;
    while n > 0 {
        n >>= 7;
        k += 1;
    }
    k
}

/// Octets of a TLV with `content` octets of content, definite length.
pub(crate) fn tlv_len(tag: Tag, content: usize) -> usize {
    tag_len(tag) + len_len(content) + content
}

pub(crate) fn int_len(tag: Tag, v: i64) -> usize {
    tlv_len(tag, 8 - int_content(v).1)
}

/// Octets [`emit_rtorq_members`] writes.
pub fn rtorq_members_len(r: &Rtorq<'_>) -> usize {
    r.checkpoint_size.map_or(0, |v| int_len(Tag::ctx(0), v))
        + r.window_size.map_or(0, |v| int_len(Tag::ctx(1), v))
        + r.dialogue_mode.map_or(0, |v| int_len(Tag::ctx(2), v.to_i64()))
        + tlv_len(Tag::ctx_c(3), connection_data_len(&r.connection_data))
        + r.application_protocol.map_or(0, |v| int_len(Tag::ctx(4), v))
}

/// Octets [`emit_rtoac_members`] writes.
pub fn rtoac_members_len(r: &Rtoac<'_>) -> usize {
    r.checkpoint_size.map_or(0, |v| int_len(Tag::ctx(0), v))
        + r.window_size.map_or(0, |v| int_len(Tag::ctx(1), v))
        + tlv_len(Tag::ctx_c(2), connection_data_len(&r.connection_data))
}

fn rtorj_members_len(r: &Rtorj<'_>) -> usize {
    r.refuse_reason.map_or(0, |v| int_len(Tag::ctx(0), v.to_i64()))
        + r.user_data.map_or(0, |d| tlv_len(Tag::ctx_c(1), d.len()))
}

/// Octets [`emit_rtab_members`] writes.
pub fn rtab_members_len(r: &Rtab<'_>) -> usize {
    r.abort_reason.map_or(0, |v| int_len(Tag::ctx(0), v.to_i64()))
        + r.reflected_parameter.as_ref().map_or(0, |b| tlv_len(Tag::ctx(1), b.data.len() + 1))
        + r.user_data.map_or(0, |d| tlv_len(Tag::ctx_c(2), d.len()))
}

/// Octets [`emit_connection_data`] writes.
pub fn connection_data_len(c: &ConnectionData<'_>) -> usize {
    match c {
        ConnectionData::Open(None) => 2,
        ConnectionData::Open(Some(d)) => tlv_len(Tag::ctx_c(0), d.len()),
        ConnectionData::Recover(s) => tlv_len(
            Tag::ctx_c(1),
            tlv_len(T61_STRING, s.calling_ss_user_reference.value().len())
                + tlv_len(UTC_TIME, s.common_reference.len())
                + s.additional_reference_information.as_ref().map_or(0, |a| tlv_len(Tag::ctx(0), a.len())),
        ),
    }
}
