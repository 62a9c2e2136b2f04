//! X.226 / ISO 8823-1 presentation PPDUs (BER, normal mode), and the X.410
//! mode shapes X.226 keeps bit-compatible.
//!
//! Which PPDU a session user data holds depends on the SPDU that carries it
//! (presentation.md §1), so there is no single `parse`: the stack decoder
//! calls [`parse_for`] with the [`PpduSlot`] its SPDU gives, or one of
//! [`parse_cp`], [`parse_cpa`], [`parse_cpr`], [`parse_abort`],
//! [`parse_user_data`] directly.
//!
//! Reading accepts what real peers send (SET members in any order,
//! indefinite lengths, constructed strings, explicitly encoded DEFAULT
//! values, long-form lengths); a SET member seen twice is an error at the
//! second one's offset; SEQUENCE members must come in ASN.1 order. X.226
//! has no extension marker in its PPDUs (only the `extensions [14]`
//! placeholder, kept raw), so an unknown member is an error. Writing emits
//! one canonical form ([`emit`]).
//!
//! Presentation data values are not decoded here: a PDV holds the raw TLV of
//! its single ASN.1 value ([`PdvValue::Single`]) and that value's offset
//! ([`Pdv::value_offset`]) so the caller can decode it with the layer the
//! presentation context names ([`ContextMap`]) and shift that layer's errors.
//!
//! Hot path: [`parse_user_data`] of a User-data with one PDV (every RTSE
//! APDU after the connection, e.g. RT-TURN-PLEASE in a PT) allocates
//! nothing: [`PdvList`] keeps its first PDV inline.

use crate::ber::{self, write_bits, write_int, write_prim, write_tlv, BitString, Class, Octets, Oid, Reader, Tag, Tlv};
use crate::error::{Error, Found, Layer, Result};
use crate::inline::InlineList;
use crate::limits::MAX_LIST_ITEMS;

const L: Layer = Layer::Presentation;

// ---------------------------------------------------------------------------
// Object identifiers P1 uses (presentation.md §2).

/// `{joint-iso-itu-t association-control(2) abstract-syntax(1) apdus(0) version1(1)}`:
/// the ACSE abstract syntax, 2.2.1.0.1.
pub const ID_AS_ACSE: Oid<'static> = Oid::from_raw(&[0x52, 0x01, 0x00, 0x01]);
/// id-as-mta-rtse 2.6.0.2.12: RTSE APDUs with the MTA bind/unbind (X.419).
pub const ID_AS_MTA_RTSE: Oid<'static> = Oid::from_raw(&[0x56, 0x00, 0x02, 0x0c]);
/// id-as-mtse 2.6.0.2.7: the MTS-APDU abstract syntax (X.419).
pub const ID_AS_MTSE: Oid<'static> = Oid::from_raw(&[0x56, 0x00, 0x02, 0x07]);
/// id-ac-mts-transfer 2.6.0.1.6: the P1 application context (in the AARQ).
pub const ID_AC_MTS_TRANSFER: Oid<'static> = Oid::from_raw(&[0x56, 0x00, 0x01, 0x06]);
/// `{joint-iso-itu-t asn1(1) basic-encoding(1)}` = 2.1.1: the BER transfer syntax.
pub const BER: Oid<'static> = Oid::from_raw(&[0x51, 0x01]);

/// Result-list `result` value acceptance(0).
pub const RESULT_ACCEPTANCE: i64 = 0;
/// Result-list `result` value user-rejection(1).
pub const RESULT_USER_REJECTION: i64 = 1;
/// Result-list `result` value provider-rejection(2).
pub const RESULT_PROVIDER_REJECTION: i64 = 2;

// Tags.
const T_SET: Tag = ber::SET;
const T_SEQ: Tag = ber::SEQUENCE;
const T_SIMPLE: Tag = Tag::app(0);
const T_FULL: Tag = Tag::app_c(1);

// ---------------------------------------------------------------------------
// Types.

/// The PPDUs this module reads. JSON: `{"pdu": "CP", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "pdu")]
pub enum Ppdu<'a> {
    /// CP-type (CN user data).
    #[serde(rename = "CP")]
    Cp(Box<Cp<'a>>),
    /// CPA-PPDU (AC user data).
    #[serde(rename = "CPA")]
    Cpa(Box<Cpa<'a>>),
    /// CPR-PPDU (RF user data).
    #[serde(rename = "CPR")]
    Cpr(Box<Cpr<'a>>),
    /// ARU-PPDU (AB user data, P-U-ABORT).
    #[serde(rename = "ARU")]
    Aru(Box<Aru<'a>>),
    /// ARP-PPDU (AB user data, P-P-ABORT).
    #[serde(rename = "ARP")]
    Arp(Arp),
    /// User-data standing alone (CPC-type: the user data of DT, PT, MIP,
    /// AS, ... = P-DATA and every other primitive's user data).
    #[serde(rename = "USER-DATA")]
    UserData(UserData<'a>),
}

impl<'a> Ppdu<'a> {
    /// Standard abbreviation (`"CP"`, `"CPA"`, ...; `"USER-DATA"` for a
    /// standalone User-data).
    pub const fn name(&self) -> &'static str {
        match self {
            Ppdu::Cp(_) => "CP",
            Ppdu::Cpa(_) => "CPA",
            Ppdu::Cpr(_) => "CPR",
            Ppdu::Aru(_) => "ARU",
            Ppdu::Arp(_) => "ARP",
            Ppdu::UserData(_) => "USER-DATA",
        }
    }
    /// The User-data this PPDU carries, if any.
    pub fn user_data(&self) -> Option<&UserData<'a>> {
        match self {
            Ppdu::Cp(p) => p.user_data(),
            Ppdu::Cpa(p) => p.user_data(),
            Ppdu::Cpr(c) => match &**c {
                Cpr::Normal(n) => n.user_data.as_ref(),
                Cpr::X410 { .. } => None,
            },
            Ppdu::Aru(a) => match &**a {
                Aru::Normal(n) => n.user_data.as_ref(),
                Aru::X410 { .. } => None,
            },
            Ppdu::UserData(u) => Some(u),
            _ => None,
        }
    }
}

/// Which PPDU a session user data holds; the SPDU type decides
/// (presentation.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PpduSlot {
    /// CN: CP-type.
    Connect,
    /// AC: CPA-PPDU.
    Accept,
    /// RF: CPR-PPDU.
    Refuse,
    /// AB: ARU-PPDU or ARP-PPDU.
    Abort,
    /// DT, PT, MIP, MIA, AS, AE, FN, DN, ...: User-data. Normal mode only:
    /// in X.410-1984 mode these user data are the bare RTS values
    /// (presentation.md §6), not presentation PDUs.
    Data,
}

/// `mode-value` of the Mode-selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// x410-1984-mode(0).
    X410,
    /// normal-mode(1).
    #[default]
    Normal,
}

impl Mode {
    /// The INTEGER on the wire.
    pub const fn value(self) -> i64 {
        match self {
            Mode::X410 => 0,
            Mode::Normal => 1,
        }
    }
    pub const fn from_value(v: i64) -> Option<Mode> {
        match v {
            0 => Some(Mode::X410),
            1 => Some(Mode::Normal),
            _ => None,
        }
    }
}

/// One entry of a Context-list (CP presentation-context-definition-list).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ContextDef<'a> {
    pub pcid: i64,
    pub abstract_syntax: Oid<'a>,
    pub transfer_syntaxes: TransferSyntaxes<'a>,
}

/// The transfer syntaxes of a [`ContextDef`] (nearly always one).
pub type TransferSyntaxes<'a> = InlineList<Oid<'a>, 1>;

/// A presentation-context-definition-list: up to four contexts inline
/// (an RTSE association names three: ACSE, RTSE, MTSE).
pub type ContextList<'a> = InlineList<ContextDef<'a>, 4>;

/// A presentation-context-definition-result-list: up to four inline.
pub type ResultList<'a> = InlineList<ContextResult<'a>, 4>;

/// Default-context-name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DefaultContextName<'a> {
    pub abstract_syntax: Oid<'a>,
    pub transfer_syntax: Oid<'a>,
}

/// One entry of a Result-list (positional: entry n answers context n of the
/// CP's list).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ContextResult<'a> {
    /// acceptance(0), user-rejection(1), provider-rejection(2).
    pub result: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<Oid<'a>>,
    /// reason-not-specified(0), abstract-syntax-not-supported(1),
    /// proposed-transfer-syntaxes-not-supported(2), local-limit-on-DCS-exceeded(3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_reason: Option<i64>,
}

impl ContextResult<'_> {
    pub fn accepted(&self) -> bool {
        self.result == RESULT_ACCEPTANCE
    }
}

/// One entry of a Presentation-context-identifier-list (ARU, RS, RSA).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContextId<'a> {
    pub pcid: i64,
    pub transfer_syntax: Oid<'a>,
}

/// CP-type: the presentation connect request.
///
/// `normal` is the `normal-mode-parameters` SEQUENCE (absent in X.410
/// mode); accessors reach its fields.
#[derive(Debug, Clone, Eq, Default, serde::Serialize)]
pub struct Cp<'a> {
    pub mode: Mode,
    /// The whole `[1] IMPLICIT RTORQapdu` TLV (header included), for the
    /// RTSE / X.410 decoder; X.410 mode only.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub x410_mode_parameters: Option<&'a [u8]>,
    /// Offset of `x410_mode_parameters` in the input given to parse (0 when
    /// absent); not part of the value (ignored by `==`).
    #[serde(skip)]
    pub x410_offset: usize,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub normal: Option<CpNormal<'a>>,
}

impl PartialEq for Cp<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.mode == o.mode && self.x410_mode_parameters == o.x410_mode_parameters && self.normal == o.normal
    }
}

/// CP-type normal-mode-parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CpNormal<'a> {
    /// DEFAULT {version-1}; `Some` when sent (even if equal to the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_selector: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub called_selector: Option<Octets<'a>>,
    /// presentation-context-definition-list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_list: Option<ContextList<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_context_name: Option<DefaultContextName<'a>>,
    /// context-management(0), restoration(1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presentation_requirements: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_session_requirements: Option<BitString<'a>>,
    /// `[11] Protocol-options DEFAULT {}`; `Some` when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_options: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiators_nominated_context: Option<i64>,
    /// `[14] SEQUENCE {...}`: the inner SEQUENCE TLV, raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData<'a>>,
}

impl<'a> Cp<'a> {
    /// The CP's User-data, if any.
    pub fn user_data(&self) -> Option<&UserData<'a>> {
        self.normal.as_ref()?.user_data.as_ref()
    }
    /// The proposed presentation contexts (empty when none).
    pub fn context_list(&self) -> &[ContextDef<'a>] {
        self.normal.as_ref().and_then(|n| n.context_list.as_deref()).unwrap_or(&[])
    }
}

/// Effective protocol version bits: whether version-1 is offered
/// (`protocol-version` absent = DEFAULT {version-1}).
fn version1(v: Option<&BitString<'_>>) -> bool {
    v.is_none_or(|b| b.bit(0))
}

impl CpNormal<'_> {
    /// Whether version-1 is proposed (true when protocol-version is absent).
    pub fn version1(&self) -> bool {
        version1(self.protocol_version.as_ref())
    }
    /// Protocol options bit `n` (nominated-context(0), short-encoding(1),
    /// packed-encoding-rules(2)); absent = DEFAULT {} = none.
    pub fn protocol_option(&self, n: usize) -> bool {
        self.protocol_options.as_ref().is_some_and(|b| b.bit(n))
    }
}

/// CPA-PPDU: the presentation connect accept.
#[derive(Debug, Clone, Eq, Default, serde::Serialize)]
pub struct Cpa<'a> {
    pub mode: Mode,
    /// The whole `[1] IMPLICIT RTOACapdu` TLV (header included); X.410 mode.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub x410_mode_parameters: Option<&'a [u8]>,
    /// Offset of `x410_mode_parameters` in the input given to parse;
    /// ignored by `==`.
    #[serde(skip)]
    pub x410_offset: usize,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub normal: Option<CpaNormal<'a>>,
}

impl PartialEq for Cpa<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.mode == o.mode && self.x410_mode_parameters == o.x410_mode_parameters && self.normal == o.normal
    }
}

impl<'a> Cpa<'a> {
    /// The CPA's User-data, if any.
    pub fn user_data(&self) -> Option<&UserData<'a>> {
        self.normal.as_ref()?.user_data.as_ref()
    }
    /// The result list (empty when none).
    pub fn result_list(&self) -> &[ContextResult<'a>] {
        self.normal.as_ref().and_then(|n| n.result_list.as_deref()).unwrap_or(&[])
    }
}

/// CPA-PPDU normal-mode-parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CpaNormal<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responding_selector: Option<Octets<'a>>,
    /// presentation-context-definition-result-list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_list: Option<ResultList<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presentation_requirements: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_session_requirements: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_options: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responders_nominated_context: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData<'a>>,
}

impl CpaNormal<'_> {
    /// Whether version-1 is selected (true when protocol-version is absent).
    pub fn version1(&self) -> bool {
        version1(self.protocol_version.as_ref())
    }
}

/// CPR-PPDU: the presentation connect refusal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
// The normal-mode variant holds its result list inline; a Cpr is rare and
// lives boxed in `Ppdu::Cpr`, so its size is no cost.
#[allow(clippy::large_enum_variant)]
pub enum Cpr<'a> {
    /// X.410 mode: the bare RTORJapdu SET (`31 ..`), whole TLV, at offset 0.
    X410 {
        #[serde(serialize_with = "crate::hex::ser")]
        raw: &'a [u8],
    },
    Normal(CprNormal<'a>),
}

/// CPR-PPDU normal-mode-parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CprNormal<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responding_selector: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_list: Option<ResultList<'a>>,
    /// Result of the default context (acceptance(0), user-rejection(1), provider-rejection(2)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_context_result: Option<i64>,
    /// Provider-reason (0 not specified ... 7 no PSAP available).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_reason: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData<'a>>,
}

/// ARU-PPDU: P-U-ABORT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Aru<'a> {
    /// X.410 mode: the bare RTABapdu SET (`31 ..`), whole TLV, at offset 0.
    X410 {
        #[serde(serialize_with = "crate::hex::ser")]
        raw: &'a [u8],
    },
    Normal(AruNormal<'a>),
}

/// ARU-PPDU normal-mode-parameters (`[0] IMPLICIT SEQUENCE`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct AruNormal<'a> {
    /// presentation-context-identifier-list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_ids: Option<Vec<ContextId<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData<'a>>,
}

/// ARP-PPDU: P-P-ABORT.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Arp {
    /// Abort-reason: 0 not specified, 1 unrecognized PPDU, 2 unexpected
    /// PPDU, 3 unexpected session service primitive, 4 unrecognized PPDU
    /// parameter, 5 unexpected PPDU parameter, 6 invalid PPDU parameter value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_reason: Option<i64>,
    /// Event-identifier (0 cp-PPDU ... 32 s-activity-end-confirm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_identifier: Option<i64>,
}

/// User-data: simply-encoded (`40`, octets) or fully-encoded (`61`, PDVs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserData<'a> {
    /// simply-encoded-data: `[APPLICATION 0] IMPLICIT OCTET STRING`.
    Simple(Octets<'a>),
    /// fully-encoded-data: `[APPLICATION 1] IMPLICIT SEQUENCE OF PDV-list`.
    Full(PdvList<'a>),
}

impl<'a> UserData<'a> {
    /// The PDVs (none for simply-encoded data).
    pub fn pdvs(&self) -> PdvIter<'_, 'a> {
        match self {
            UserData::Simple(_) => PdvIter { first: None, rest: [].iter() },
            UserData::Full(l) => l.iter(),
        }
    }
    /// The first PDV, if fully encoded and not empty.
    pub fn first(&self) -> Option<&Pdv<'a>> {
        match self {
            UserData::Simple(_) => None,
            UserData::Full(l) => l.first(),
        }
    }
    /// The only PDV if there is exactly one.
    pub fn single(&self) -> Option<&Pdv<'a>> {
        match self {
            UserData::Full(l) if l.len() == 1 => l.first(),
            _ => None,
        }
    }
    /// Fully-encoded User-data holding one PDV.
    pub fn one(pdv: Pdv<'a>) -> Self {
        UserData::Full(PdvList::one(pdv))
    }
}

impl serde::Serialize for UserData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            UserData::Simple(o) => m.serialize_entry("simply_encoded", o)?,
            UserData::Full(l) => m.serialize_entry("pdvs", l)?,
        }
        m.end()
    }
}

/// The PDVs of fully-encoded data: the first one inline, the others (rare)
/// in a `Vec` that allocates only when there are two or more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PdvList<'a> {
    // Invariant: `first.is_none()` implies `rest.is_empty()`.
    first: Option<Pdv<'a>>,
    rest: Vec<Pdv<'a>>,
}

impl<'a> PdvList<'a> {
    /// An empty list (not valid X.226, which wants at least one PDV, but
    /// read if sent).
    pub const fn new() -> Self {
        PdvList { first: None, rest: Vec::new() }
    }
    /// A list of one PDV (no allocation).
    pub const fn one(pdv: Pdv<'a>) -> Self {
        PdvList { first: Some(pdv), rest: Vec::new() }
    }
    pub fn push(&mut self, pdv: Pdv<'a>) {
        if self.first.is_none() {
            self.first = Some(pdv);
        } else {
            self.rest.push(pdv);
        }
    }
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
    pub fn first(&self) -> Option<&Pdv<'a>> {
        self.first.as_ref()
    }
    pub fn iter(&self) -> PdvIter<'_, 'a> {
        PdvIter { first: self.first.as_ref(), rest: self.rest.iter() }
    }
}

impl<'a> FromIterator<Pdv<'a>> for PdvList<'a> {
    fn from_iter<I: IntoIterator<Item = Pdv<'a>>>(it: I) -> Self {
        let mut l = PdvList::new();
        for p in it {
            l.push(p);
        }
        l
    }
}

impl<'l, 'a> IntoIterator for &'l PdvList<'a> {
    type Item = &'l Pdv<'a>;
    type IntoIter = PdvIter<'l, 'a>;
    fn into_iter(self) -> PdvIter<'l, 'a> {
        self.iter()
    }
}

impl serde::Serialize for PdvList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Iterator over the PDVs of a [`PdvList`].
#[derive(Debug, Clone)]
pub struct PdvIter<'l, 'a> {
    first: Option<&'l Pdv<'a>>,
    rest: core::slice::Iter<'l, Pdv<'a>>,
}

impl<'l, 'a> Iterator for PdvIter<'l, 'a> {
    type Item = &'l Pdv<'a>;
    fn next(&mut self) -> Option<&'l Pdv<'a>> {
        self.first.take().or_else(|| self.rest.next())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.first.is_some()) + self.rest.len();
        (n, Some(n))
    }
}

/// One PDV-list: a presentation data value in a presentation context.
#[derive(Debug, Clone, Eq, serde::Serialize)]
pub struct Pdv<'a> {
    /// Present only when more than one transfer syntax was proposed for the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<Oid<'a>>,
    pub pcid: i64,
    pub value: PdvValue<'a>,
    /// Offset, in the input given to parse, of the value's first octet: the
    /// identifier octet of the single ASN.1 value, the first content octet
    /// of octet-aligned data, the first data octet (after the unused-bits
    /// octet) of arbitrary data; for a constructed string, its first content
    /// octet. Not part of the value (ignored by `==`).
    #[serde(skip)]
    pub value_offset: usize,
}

impl PartialEq for Pdv<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.transfer_syntax == o.transfer_syntax && self.pcid == o.pcid && self.value == o.value
    }
}

impl<'a> Pdv<'a> {
    /// A single-ASN1-type PDV (offset 0).
    pub const fn single(pcid: i64, raw: &'a [u8]) -> Self {
        Pdv { transfer_syntax: None, pcid, value: PdvValue::Single(raw), value_offset: 0 }
    }
}

/// presentation-data-values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PdvValue<'a> {
    /// single-ASN1-type `[0]`: the raw TLV of the one BER value inside.
    #[serde(serialize_with = "crate::hex::ser")]
    Single(&'a [u8]),
    /// octet-aligned `[1] IMPLICIT OCTET STRING`.
    OctetAligned(Octets<'a>),
    /// arbitrary `[2] IMPLICIT BIT STRING`.
    Arbitrary(BitString<'a>),
}

fn ser_opt_hex<S: serde::Serializer>(b: &Option<&[u8]>, s: S) -> core::result::Result<S::Ok, S::Error> {
    match b {
        Some(b) => crate::hex::ser(b, s),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------
// Presentation context map.

/// One defined presentation context.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ContextEntry {
    pub pcid: i64,
    pub abstract_syntax: Oid<'static>,
    /// The transfer syntax the responder chose (from the result list), or
    /// the only one proposed; `None` when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<Oid<'static>>,
}

/// `oid` for a [`ContextMap`]: the constant itself when it is one of the
/// syntaxes an RTSE association names, so that no copy is allocated (a
/// CP names two to four of them: 13,000 allocations and frees at the
/// timeline benchmark's 10 MB), else an owned copy. Equal to
/// `oid.clone().into_owned()` either way.
fn owned_syntax(oid: &Oid<'_>) -> Oid<'static> {
    let b = oid.as_bytes();
    // By reference and length first: building the four constants and
    // comparing each with a call cost 120 instructions an OID.
    for k in [&ID_AS_ACSE, &BER, &ID_AS_MTA_RTSE, &ID_AS_MTSE] {
        let kb = k.as_bytes();
        if kb.len() == b.len() && kb == b {
            return k.clone();
        }
    }
    oid.clone().into_owned()
}

/// Presentation context identifier -> abstract syntax, for one presentation
/// connection: the CP's context list filtered by the CPA's result list. The
/// only way to know what a later PDV carries (presentation.md §2). Owned, so
/// it outlives the CP/CPA bytes. At most [`MAX_LIST_ITEMS`] entries (the
/// parsers bound the lists).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ContextMap {
    entries: InlineList<ContextEntry, 4>,
}

impl ContextMap {
    pub fn new() -> Self {
        ContextMap { entries: InlineList::new() }
    }

    /// The contexts a CP proposes (all of them: no answer seen yet).
    pub fn proposed(cp: &Cp<'_>) -> Self {
        let mut m = ContextMap::new();
        m.propose(cp);
        m
    }

    /// Make this map [`ContextMap::proposed`]`(cp)`, in place.
    pub fn propose(&mut self, cp: &Cp<'_>) {
        self.entries.clear();
        for d in cp.context_list() {
            let ts = match d.transfer_syntaxes.as_slice() {
                [one] => Some(owned_syntax(one)),
                _ => None,
            };
            self.insert(d.pcid, owned_syntax(&d.abstract_syntax), ts);
        }
    }

    /// The contexts a CP proposed and a CPA accepted. The result list is
    /// positional (entry n answers context n; a context with no entry is
    /// left out). If the CPA has no result list
    /// at all, every proposed context is kept (a lenient reading of a
    /// malformed accept, so later PDVs can still be labelled).
    pub fn negotiated(cp: &Cp<'_>, cpa: &Cpa<'_>) -> Self {
        let results = cpa.normal.as_ref().and_then(|n| n.result_list.as_deref());
        let Some(results) = results else {
            return ContextMap::proposed(cp);
        };
        let mut m = ContextMap::new();
        for (d, r) in cp.context_list().iter().zip(results) {
            if !r.accepted() {
                continue;
            }
            let ts = match (&r.transfer_syntax, d.transfer_syntaxes.as_slice()) {
                (Some(t), _) => Some(owned_syntax(t)),
                (None, [one]) => Some(owned_syntax(one)),
                _ => None,
            };
            m.insert(d.pcid, owned_syntax(&d.abstract_syntax), ts);
        }
        m
    }

    /// Add or replace the context `pcid`.
    pub fn insert(&mut self, pcid: i64, abstract_syntax: Oid<'static>, transfer_syntax: Option<Oid<'static>>) {
        let e = ContextEntry { pcid, abstract_syntax, transfer_syntax };
        match self.entries.iter_mut().find(|x| x.pcid == pcid) {
            Some(x) => *x = e,
            None => self.entries.push(e),
        }
    }

    /// The abstract syntax of context `pcid`.
    pub fn syntax_of(&self, pcid: i64) -> Option<&Oid<'static>> {
        self.entries.iter().find(|e| e.pcid == pcid).map(|e| &e.abstract_syntax)
    }

    /// The identifier of the (first) context for `abstract_syntax`.
    pub fn pcid_of(&self, abstract_syntax: &Oid<'_>) -> Option<i64> {
        self.entries.iter().find(|e| e.abstract_syntax == *abstract_syntax).map(|e| e.pcid)
    }

    pub fn entries(&self) -> &[ContextEntry] {
        &self.entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Shared BER mapping helpers (also used by `acse`).

/// Tracks which members of a SET or SEQUENCE have been read: rejects a
/// member seen twice (at the duplicate's offset) and, for a SEQUENCE, a
/// member out of definition order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Members {
    seen: u64,
    ordered: bool,
}

impl Members {
    pub(crate) const fn set() -> Self {
        Members { seen: 0, ordered: false }
    }
    pub(crate) const fn sequence() -> Self {
        Members { seen: 0, ordered: true }
    }
    /// Record member `idx` (< 64, definition order) read as `t`.
    pub(crate) fn mark(&mut self, layer: Layer, idx: u32, t: &Tlv<'_>, what: &'static str) -> Result<()> {
        let bit = 1u64 << (idx & 63);
        if self.seen & bit != 0 {
            return Err(Error::new(layer, t.offset, what, Found::Other("a duplicate member")));
        }
        if self.ordered && (self.seen >> (idx & 63)) != 0 {
            return Err(Error::new(layer, t.offset, what, Found::Other("a member out of SEQUENCE order")));
        }
        self.seen |= bit;
        Ok(())
    }
    pub(crate) fn has(&self, idx: u32) -> bool {
        self.seen & (1u64 << (idx & 63)) != 0
    }
}

/// Error for a TLV whose tag is not what was expected.
pub(crate) fn bad_tag(layer: Layer, t: &Tlv<'_>, what: &'static str) -> Error {
    Error::new(layer, t.offset, what, Found::Tag(t.tag))
}

/// Error for a required member missing from the value `t`.
pub(crate) fn absent(layer: Layer, t: &Tlv<'_>, what: &'static str) -> Error {
    Error::new(layer, t.offset, what, Found::Other("the member absent"))
}

/// Require the constructed form (SEQUENCE/SET types, explicit tags).
pub(crate) fn constructed(layer: Layer, t: &Tlv<'_>, what: &'static str) -> Result<()> {
    if t.tag.constructed {
        Ok(())
    } else {
        Err(bad_tag(layer, t, what))
    }
}

/// The one value inside an explicit tag.
pub(crate) fn explicit<'a>(layer: Layer, t: &Tlv<'a>, what: &'static str) -> Result<Tlv<'a>> {
    constructed(layer, t, what)?;
    let mut r = t.reader(layer);
    let inner = r.read(what)?;
    r.finish(what)?;
    Ok(inner)
}

/// Count check for SEQUENCE OF / SET OF members.
pub(crate) fn check_count(layer: Layer, t: &Tlv<'_>, n: usize, what: &'static str) -> Result<()> {
    if n >= MAX_LIST_ITEMS {
        Err(Error::new(layer, t.offset, what, Found::Other("more items than limits::MAX_LIST_ITEMS")))
    } else {
        Ok(())
    }
}

/// SEQUENCE OF (or SET OF) the content of `t`, each item read by `f`.
pub(crate) fn list_of<'a, T, C: ListOut<T>>(
    layer: Layer,
    t: &Tlv<'a>,
    what: &'static str,
    mut f: impl FnMut(Tlv<'a>) -> Result<T>,
) -> Result<C> {
    constructed(layer, t, what)?;
    let mut r = t.reader(layer);
    let mut out = C::default();
    while !r.is_empty() {
        let item = r.read(what)?;
        check_count(layer, &item, out.count(), what)?;
        out.push_item(f(item)?);
    }
    Ok(out)
}

/// [`list_of`] into `out` (empty on entry), filled in place.
pub(crate) fn list_into<'a, T, C: ListOut<T>>(
    layer: Layer,
    t: &Tlv<'a>,
    what: &'static str,
    out: &mut C,
    mut f: impl FnMut(Tlv<'a>) -> Result<T>,
) -> Result<()> {
    constructed(layer, t, what)?;
    let mut r = t.reader(layer);
    while !r.is_empty() {
        let item = r.read(what)?;
        check_count(layer, &item, out.count(), what)?;
        out.push_item(f(item)?);
    }
    Ok(())
}

/// What [`list_of`] fills: a `Vec` or an [`InlineList`].
pub(crate) trait ListOut<T>: Default {
    fn count(&self) -> usize;
    fn push_item(&mut self, v: T);
}

impl<T> ListOut<T> for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }
    fn push_item(&mut self, v: T) {
        self.push(v);
    }
}

impl<T: Default, const N: usize> ListOut<T> for InlineList<T, N> {
    fn count(&self) -> usize {
        self.len()
    }
    fn push_item(&mut self, v: T) {
        self.push(v);
    }
}

/// SEQUENCE OF OBJECT IDENTIFIER.
pub(crate) fn oid_list<'a, C: ListOut<Oid<'a>>>(layer: Layer, t: &Tlv<'a>, what: &'static str) -> Result<C> {
    list_of(layer, t, what, |i| {
        if i.tag != ber::OID {
            return Err(bad_tag(layer, &i, what));
        }
        i.oid(layer, what)
    })
}

/// Whether `t` has class `class` and number `n` (either form).
pub(crate) fn is(t: &Tlv<'_>, class: Class, n: u32) -> bool {
    t.tag.class == class && t.tag.number == n
}

pub(crate) fn write_oid(out: &mut Vec<u8>, tag: Tag, oid: &Oid<'_>) {
    write_prim(out, tag, oid.as_bytes());
}

pub(crate) fn write_oid_list(out: &mut Vec<u8>, tag: Tag, l: &[Oid<'_>]) {
    write_tlv(out, tag, |o| {
        for x in l {
            write_oid(o, ber::OID, x);
        }
    });
}

// ---------------------------------------------------------------------------
// Parsing.

/// Parse the PPDU that `slot` says this session user data holds.
pub fn parse_for(slot: PpduSlot, input: &[u8]) -> Result<(Ppdu<'_>, &[u8])> {
    Ok(match slot {
        PpduSlot::Connect => {
            let (p, r) = parse_cp_boxed(input)?;
            (Ppdu::Cp(p), r)
        }
        PpduSlot::Accept => {
            let (p, r) = parse_cpa_boxed(input)?;
            (Ppdu::Cpa(p), r)
        }
        PpduSlot::Refuse => {
            let (p, r) = parse_cpr(input)?;
            (Ppdu::Cpr(Box::new(p)), r)
        }
        PpduSlot::Abort => parse_abort(input)?,
        PpduSlot::Data => {
            let (p, r) = parse_user_data(input)?;
            (Ppdu::UserData(p), r)
        }
    })
}

/// Tell X.410-1984 mode from normal mode from a CN's user data (x410.md §4):
/// decodes the CP-type / PConnect SET far enough to read `mode-value` (SET
/// members in any order, any length forms). `None` if that fails.
pub fn mode_of_connect(user_data: &[u8]) -> Option<Mode> {
    let mut r = Reader::new(L, user_data);
    let set = r.expect(T_SET, "CP-type SET").ok()?;
    let mut m = set.reader(L);
    while !m.is_empty() {
        let t = m.read("CP-type member").ok()?;
        if t.tag == Tag::ctx_c(0) {
            return parse_mode_selector(&t).ok();
        }
    }
    None
}

/// Mode-selector ::= SET { mode-value [0] IMPLICIT INTEGER }.
fn parse_mode_selector(t: &Tlv<'_>) -> Result<Mode> {
    const WHAT: &str = "mode-value [0] IMPLICIT INTEGER (0 or 1)";
    constructed(L, t, "mode-selector [0] IMPLICIT SET")?;
    let mut r = t.reader(L);
    let mut mode = None;
    while !r.is_empty() {
        let v = r.read(WHAT)?;
        if v.tag != Tag::ctx(0) {
            return Err(bad_tag(L, &v, WHAT));
        }
        if mode.is_some() {
            return Err(Error::new(L, v.offset, WHAT, Found::Other("a duplicate member")));
        }
        let n = v.int(L, WHAT)?;
        mode = Some(Mode::from_value(n).ok_or_else(|| v.err(L, WHAT, Found::Value(n as u64)))?);
    }
    mode.ok_or_else(|| absent(L, t, WHAT))
}

/// The top-level SET of CP-type / CPA-PPDU: mode, X.410 raw, normal TLV.
struct ConnectSet<'a> {
    mode: Mode,
    x410: Option<Tlv<'a>>,
    normal: Option<Tlv<'a>>,
}

fn parse_connect_set<'a>(input: &'a [u8], what: &'static str) -> Result<(ConnectSet<'a>, &'a [u8])> {
    let mut r = Reader::new(L, input);
    let set = r.expect(T_SET, what)?;
    let mut m = set.reader(L);
    let mut seen = Members::set();
    let (mut mode, mut x410, mut normal) = (None, None, None);
    while !m.is_empty() {
        let t = m.read("mode-selector [0], x410-mode-parameters [1] or normal-mode-parameters [2]")?;
        match (t.tag.class, t.tag.number) {
            (Class::Context, 0) => {
                seen.mark(L, 0, &t, "mode-selector [0]")?;
                mode = Some(parse_mode_selector(&t)?);
            }
            (Class::Context, 1) => {
                seen.mark(L, 1, &t, "x410-mode-parameters [1]")?;
                constructed(L, &t, "x410-mode-parameters [1] IMPLICIT SET")?;
                x410 = Some(t);
            }
            (Class::Context, 2) => {
                seen.mark(L, 2, &t, "normal-mode-parameters [2]")?;
                constructed(L, &t, "normal-mode-parameters [2] IMPLICIT SEQUENCE")?;
                normal = Some(t);
            }
            _ => {
                return Err(bad_tag(L, &t, "mode-selector [0], x410-mode-parameters [1] or normal-mode-parameters [2]"))
            }
        }
    }
    let mode = mode.ok_or_else(|| absent(L, &set, "mode-selector [0]"))?;
    Ok((ConnectSet { mode, x410, normal }, r.rest()))
}

/// Parse a CP-type (CN user data).
pub fn parse_cp(input: &[u8]) -> Result<(Cp<'_>, &[u8])> {
    parse_cp_boxed(input).map(|(cp, rest)| (*cp, rest))
}

/// [`parse_cp`] into a box, filled in place: a `Cp` (with its context
/// list inline) is several hundred octets, and each move of it a copy.
fn parse_cp_boxed(input: &[u8]) -> Result<(Box<Cp<'_>>, &[u8])> {
    let (c, rest) = parse_connect_set(input, "CP-type SET")?;
    // Box::default writes the value in its allocation; a struct literal
    // was built on the stack and copied in.
    let mut cp = Box::<Cp>::default();
    cp.mode = c.mode;
    cp.x410_mode_parameters = c.x410.map(|t| t.raw);
    cp.x410_offset = c.x410.map_or(0, |t| t.offset);
    if let Some(t) = &c.normal {
        parse_cp_normal(t, cp.normal.insert(CpNormal::default()))?;
    }
    Ok((cp, rest))
}

/// Fill `n` (default on entry) from the normal-mode-parameters.
fn parse_cp_normal<'a>(t: &Tlv<'a>, n: &mut CpNormal<'a>) -> Result<()> {
    const WHAT: &str = "CP normal-mode-parameters member";
    let mut r = t.reader(L);
    let mut seen = Members::sequence();
    while !r.is_empty() {
        let m = r.read(WHAT)?;
        match (m.tag.class, m.tag.number) {
            (Class::Context, 0) => {
                seen.mark(L, 0, &m, "protocol-version [0]")?;
                n.protocol_version = Some(m.bits(L, "protocol-version [0] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 1) => {
                seen.mark(L, 1, &m, "calling-presentation-selector [1]")?;
                n.calling_selector = Some(m.octets(L, "calling-presentation-selector [1] IMPLICIT OCTET STRING")?);
            }
            (Class::Context, 2) => {
                seen.mark(L, 2, &m, "called-presentation-selector [2]")?;
                n.called_selector = Some(m.octets(L, "called-presentation-selector [2] IMPLICIT OCTET STRING")?);
            }
            (Class::Context, 4) => {
                seen.mark(L, 4, &m, "presentation-context-definition-list [4]")?;
                parse_context_list(&m, n.context_list.insert(ContextList::new()))?;
            }
            (Class::Context, 6) => {
                seen.mark(L, 6, &m, "default-context-name [6]")?;
                n.default_context_name = Some(parse_default_context_name(&m)?);
            }
            (Class::Context, 8) => {
                seen.mark(L, 8, &m, "presentation-requirements [8]")?;
                n.presentation_requirements = Some(m.bits(L, "presentation-requirements [8] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 9) => {
                seen.mark(L, 9, &m, "user-session-requirements [9]")?;
                n.user_session_requirements = Some(m.bits(L, "user-session-requirements [9] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 11) => {
                seen.mark(L, 11, &m, "protocol-options [11]")?;
                n.protocol_options = Some(explicit_bits(&m, "protocol-options [11] BIT STRING")?);
            }
            (Class::Context, 12) => {
                seen.mark(L, 12, &m, "initiators-nominated-context [12]")?;
                n.initiators_nominated_context = Some(explicit_int(&m, "initiators-nominated-context [12] INTEGER")?);
            }
            (Class::Context, 14) => {
                seen.mark(L, 14, &m, "extensions [14]")?;
                let inner = explicit(L, &m, "extensions [14] SEQUENCE")?;
                if inner.tag != T_SEQ {
                    return Err(bad_tag(L, &inner, "extensions [14] SEQUENCE"));
                }
                n.extensions = Some(Octets::borrowed(inner.raw));
            }
            (Class::Application, 0 | 1) => {
                seen.mark(L, 15, &m, "user-data")?;
                n.user_data = Some(user_data_from_tlv(&m)?);
            }
            _ => return Err(bad_tag(L, &m, WHAT)),
        }
    }
    Ok(())
}

fn explicit_bits<'a>(t: &Tlv<'a>, what: &'static str) -> Result<BitString<'a>> {
    let inner = explicit(L, t, what)?;
    if !inner.tag.same_type(ber::BIT_STRING) {
        return Err(bad_tag(L, &inner, what));
    }
    inner.bits(L, what)
}

fn explicit_int(t: &Tlv<'_>, what: &'static str) -> Result<i64> {
    let inner = explicit(L, t, what)?;
    if inner.tag != ber::INTEGER {
        return Err(bad_tag(L, &inner, what));
    }
    inner.int(L, what)
}

fn parse_context_list<'a>(t: &Tlv<'a>, out: &mut ContextList<'a>) -> Result<()> {
    const WHAT: &str = "Context-list SEQUENCE";
    list_into(L, t, "presentation-context-definition-list [4] IMPLICIT SEQUENCE OF", out, |item| {
        if item.tag != T_SEQ {
            return Err(bad_tag(L, &item, WHAT));
        }
        let mut r = item.reader(L);
        let pcid = r.expect(ber::INTEGER, "presentation-context-identifier INTEGER")?;
        let pcid = pcid.int(L, "presentation-context-identifier INTEGER")?;
        let a = r.expect(ber::OID, "abstract-syntax-name OBJECT IDENTIFIER")?;
        let abstract_syntax = a.oid(L, "abstract-syntax-name OBJECT IDENTIFIER")?;
        let ts = r.expect(T_SEQ, "transfer-syntax-name-list SEQUENCE OF")?;
        let transfer_syntaxes = oid_list(L, &ts, "transfer-syntax-name OBJECT IDENTIFIER")?;
        r.finish("end of Context-list item")?;
        Ok(ContextDef { pcid, abstract_syntax, transfer_syntaxes })
    })
}

fn parse_default_context_name<'a>(t: &Tlv<'a>) -> Result<DefaultContextName<'a>> {
    constructed(L, t, "default-context-name [6] IMPLICIT SEQUENCE")?;
    let mut r = t.reader(L);
    let a = r.expect(Tag::ctx(0), "abstract-syntax-name [0] IMPLICIT OBJECT IDENTIFIER")?;
    let abstract_syntax = a.oid(L, "abstract-syntax-name [0]")?;
    let ts = r.expect(Tag::ctx(1), "transfer-syntax-name [1] IMPLICIT OBJECT IDENTIFIER")?;
    let transfer_syntax = ts.oid(L, "transfer-syntax-name [1]")?;
    r.finish("end of default-context-name")?;
    Ok(DefaultContextName { abstract_syntax, transfer_syntax })
}

fn parse_result_list<'a>(t: &Tlv<'a>, what: &'static str, out: &mut ResultList<'a>) -> Result<()> {
    const ITEM: &str = "Result-list SEQUENCE";
    list_into(L, t, what, out, |item| {
        if item.tag != T_SEQ {
            return Err(bad_tag(L, &item, ITEM));
        }
        let mut r = item.reader(L);
        let res = r.expect(Tag::ctx(0), "result [0] IMPLICIT INTEGER")?;
        let result = res.int(L, "result [0] IMPLICIT INTEGER")?;
        let transfer_syntax = match r.optional(Tag::ctx(1), "transfer-syntax-name [1]")? {
            Some(t) => Some(t.oid(L, "transfer-syntax-name [1] IMPLICIT OBJECT IDENTIFIER")?),
            None => None,
        };
        let provider_reason = match r.optional(Tag::ctx(2), "provider-reason [2]")? {
            Some(t) => Some(t.int(L, "provider-reason [2] IMPLICIT INTEGER")?),
            None => None,
        };
        r.finish("end of Result-list item")?;
        Ok(ContextResult { result, transfer_syntax, provider_reason })
    })
}

fn parse_context_id_list<'a>(t: &Tlv<'a>) -> Result<Vec<ContextId<'a>>> {
    const ITEM: &str = "Presentation-context-identifier-list SEQUENCE";
    list_of(L, t, "presentation-context-identifier-list [0] IMPLICIT SEQUENCE OF", |item| {
        if item.tag != T_SEQ {
            return Err(bad_tag(L, &item, ITEM));
        }
        let mut r = item.reader(L);
        let p = r.expect(ber::INTEGER, "presentation-context-identifier INTEGER")?;
        let pcid = p.int(L, "presentation-context-identifier INTEGER")?;
        let ts = r.expect(ber::OID, "transfer-syntax-name OBJECT IDENTIFIER")?;
        let transfer_syntax = ts.oid(L, "transfer-syntax-name OBJECT IDENTIFIER")?;
        r.finish("end of Presentation-context-identifier-list item")?;
        Ok(ContextId { pcid, transfer_syntax })
    })
}

/// Parse a CPA-PPDU (AC user data).
pub fn parse_cpa(input: &[u8]) -> Result<(Cpa<'_>, &[u8])> {
    parse_cpa_boxed(input).map(|(cpa, rest)| (*cpa, rest))
}

/// [`parse_cpa`] into a box, filled in place (see [`parse_cp_boxed`]).
fn parse_cpa_boxed(input: &[u8]) -> Result<(Box<Cpa<'_>>, &[u8])> {
    let (c, rest) = parse_connect_set(input, "CPA-PPDU SET")?;
    // Box::default writes the value in its allocation; a struct literal
    // was built on the stack and copied in.
    let mut cpa = Box::<Cpa>::default();
    cpa.mode = c.mode;
    cpa.x410_mode_parameters = c.x410.map(|t| t.raw);
    cpa.x410_offset = c.x410.map_or(0, |t| t.offset);
    if let Some(t) = &c.normal {
        parse_cpa_normal(t, cpa.normal.insert(CpaNormal::default()))?;
    }
    Ok((cpa, rest))
}

/// Fill `n` (default on entry) from the normal-mode-parameters.
fn parse_cpa_normal<'a>(t: &Tlv<'a>, n: &mut CpaNormal<'a>) -> Result<()> {
    const WHAT: &str = "CPA normal-mode-parameters member";
    let mut r = t.reader(L);
    let mut seen = Members::sequence();
    while !r.is_empty() {
        let m = r.read(WHAT)?;
        match (m.tag.class, m.tag.number) {
            (Class::Context, 0) => {
                seen.mark(L, 0, &m, "protocol-version [0]")?;
                n.protocol_version = Some(m.bits(L, "protocol-version [0] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 3) => {
                seen.mark(L, 3, &m, "responding-presentation-selector [3]")?;
                n.responding_selector =
                    Some(m.octets(L, "responding-presentation-selector [3] IMPLICIT OCTET STRING")?);
            }
            (Class::Context, 5) => {
                seen.mark(L, 5, &m, "presentation-context-definition-result-list [5]")?;
                parse_result_list(
                    &m,
                    "presentation-context-definition-result-list [5] IMPLICIT SEQUENCE OF",
                    n.result_list.insert(ResultList::new()),
                )?;
            }
            (Class::Context, 8) => {
                seen.mark(L, 8, &m, "presentation-requirements [8]")?;
                n.presentation_requirements = Some(m.bits(L, "presentation-requirements [8] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 9) => {
                seen.mark(L, 9, &m, "user-session-requirements [9]")?;
                n.user_session_requirements = Some(m.bits(L, "user-session-requirements [9] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 11) => {
                seen.mark(L, 11, &m, "protocol-options [11]")?;
                n.protocol_options = Some(explicit_bits(&m, "protocol-options [11] BIT STRING")?);
            }
            (Class::Context, 13) => {
                seen.mark(L, 13, &m, "responders-nominated-context [13]")?;
                n.responders_nominated_context = Some(explicit_int(&m, "responders-nominated-context [13] INTEGER")?);
            }
            (Class::Application, 0 | 1) => {
                seen.mark(L, 15, &m, "user-data")?;
                n.user_data = Some(user_data_from_tlv(&m)?);
            }
            _ => return Err(bad_tag(L, &m, WHAT)),
        }
    }
    Ok(())
}

/// Parse a CPR-PPDU (RF user data): a bare SET is the X.410-mode RTORJapdu,
/// a SEQUENCE the normal-mode parameters.
pub fn parse_cpr(input: &[u8]) -> Result<(Cpr<'_>, &[u8])> {
    const WHAT: &str = "CPR-PPDU: RTORJapdu SET or normal-mode SEQUENCE";
    let mut r = Reader::new(L, input);
    let t = r.read(WHAT)?;
    let cpr = if t.tag == T_SET {
        Cpr::X410 { raw: t.raw }
    } else if t.tag == T_SEQ {
        Cpr::Normal(parse_cpr_normal(&t)?)
    } else {
        return Err(bad_tag(L, &t, WHAT));
    };
    Ok((cpr, r.rest()))
}

fn parse_cpr_normal<'a>(t: &Tlv<'a>) -> Result<CprNormal<'a>> {
    const WHAT: &str = "CPR normal-mode-parameters member";
    let mut r = t.reader(L);
    let mut n = CprNormal::default();
    let mut seen = Members::sequence();
    while !r.is_empty() {
        let m = r.read(WHAT)?;
        match (m.tag.class, m.tag.number) {
            (Class::Context, 0) => {
                seen.mark(L, 0, &m, "protocol-version [0]")?;
                n.protocol_version = Some(m.bits(L, "protocol-version [0] IMPLICIT BIT STRING")?);
            }
            (Class::Context, 3) => {
                seen.mark(L, 3, &m, "responding-presentation-selector [3]")?;
                n.responding_selector =
                    Some(m.octets(L, "responding-presentation-selector [3] IMPLICIT OCTET STRING")?);
            }
            (Class::Context, 5) => {
                seen.mark(L, 5, &m, "presentation-context-definition-result-list [5]")?;
                parse_result_list(
                    &m,
                    "presentation-context-definition-result-list [5] IMPLICIT SEQUENCE OF",
                    n.result_list.insert(ResultList::new()),
                )?;
            }
            (Class::Context, 7) => {
                seen.mark(L, 7, &m, "default-context-result [7]")?;
                n.default_context_result = Some(m.int(L, "default-context-result [7] IMPLICIT INTEGER")?);
            }
            (Class::Context, 10) => {
                seen.mark(L, 10, &m, "provider-reason [10]")?;
                n.provider_reason = Some(m.int(L, "provider-reason [10] IMPLICIT INTEGER")?);
            }
            (Class::Application, 0 | 1) => {
                seen.mark(L, 15, &m, "user-data")?;
                n.user_data = Some(user_data_from_tlv(&m)?);
            }
            _ => return Err(bad_tag(L, &m, WHAT)),
        }
    }
    Ok(n)
}

/// Parse an Abort-type (AB user data): ARU (bare SET in X.410 mode, `[0]`
/// in normal mode) or ARP (SEQUENCE).
pub fn parse_abort(input: &[u8]) -> Result<(Ppdu<'_>, &[u8])> {
    const WHAT: &str = "Abort-type: RTABapdu SET, ARU [0] or ARP SEQUENCE";
    let mut r = Reader::new(L, input);
    let t = r.read(WHAT)?;
    let p = if t.tag == T_SET {
        Ppdu::Aru(Box::new(Aru::X410 { raw: t.raw }))
    } else if t.tag == Tag::ctx_c(0) {
        Ppdu::Aru(Box::new(Aru::Normal(parse_aru_normal(&t)?)))
    } else if t.tag == T_SEQ {
        Ppdu::Arp(parse_arp(&t)?)
    } else {
        return Err(bad_tag(L, &t, WHAT));
    };
    Ok((p, r.rest()))
}

fn parse_aru_normal<'a>(t: &Tlv<'a>) -> Result<AruNormal<'a>> {
    const WHAT: &str = "ARU normal-mode-parameters member";
    let mut r = t.reader(L);
    let mut n = AruNormal::default();
    let mut seen = Members::sequence();
    while !r.is_empty() {
        let m = r.read(WHAT)?;
        match (m.tag.class, m.tag.number) {
            (Class::Context, 0) => {
                seen.mark(L, 0, &m, "presentation-context-identifier-list [0]")?;
                n.context_ids = Some(parse_context_id_list(&m)?);
            }
            (Class::Application, 0 | 1) => {
                seen.mark(L, 15, &m, "user-data")?;
                n.user_data = Some(user_data_from_tlv(&m)?);
            }
            _ => return Err(bad_tag(L, &m, WHAT)),
        }
    }
    Ok(n)
}

fn parse_arp(t: &Tlv<'_>) -> Result<Arp> {
    const WHAT: &str = "ARP-PPDU member";
    let mut r = t.reader(L);
    let mut a = Arp::default();
    let mut seen = Members::sequence();
    while !r.is_empty() {
        let m = r.read(WHAT)?;
        if m.tag == Tag::ctx(0) {
            seen.mark(L, 0, &m, "provider-reason [0]")?;
            a.provider_reason = Some(m.int(L, "provider-reason [0] IMPLICIT Abort-reason")?);
        } else if m.tag == Tag::ctx(1) {
            seen.mark(L, 1, &m, "event-identifier [1]")?;
            a.event_identifier = Some(m.int(L, "event-identifier [1] IMPLICIT Event-identifier")?);
        } else {
            return Err(bad_tag(L, &m, WHAT));
        }
    }
    Ok(a)
}

/// Parse a User-data (CPC-type: the user data of DT, PT, MIP, ...).
/// Allocates nothing when the data is fully encoded with one PDV.
pub fn parse_user_data(input: &[u8]) -> Result<(UserData<'_>, &[u8])> {
    let mut r = Reader::new(L, input);
    let t = r.read("User-data: simply-encoded [APPLICATION 0] or fully-encoded [APPLICATION 1]")?;
    if !is(&t, Class::Application, 0) && !is(&t, Class::Application, 1) {
        return Err(bad_tag(L, &t, "User-data: simply-encoded [APPLICATION 0] or fully-encoded [APPLICATION 1]"));
    }
    Ok((user_data_from_tlv(&t)?, r.rest()))
}

/// User-data from its TLV (APPLICATION 0 or 1, checked by the caller).
fn user_data_from_tlv<'a>(t: &Tlv<'a>) -> Result<UserData<'a>> {
    if t.tag.number == 0 {
        return Ok(UserData::Simple(t.octets(L, "simply-encoded-data [APPLICATION 0] IMPLICIT OCTET STRING")?));
    }
    if t.tag != T_FULL {
        return Err(bad_tag(L, t, "fully-encoded-data [APPLICATION 1] IMPLICIT SEQUENCE OF"));
    }
    let mut r = t.reader(L);
    let mut list = PdvList::new();
    while !r.is_empty() {
        let item = r.read("PDV-list SEQUENCE")?;
        check_count(L, &item, list.len(), "PDV-list SEQUENCE")?;
        list.push(parse_pdv(&item)?);
    }
    Ok(UserData::Full(list))
}

fn parse_pdv<'a>(t: &Tlv<'a>) -> Result<Pdv<'a>> {
    const VALUES: &str = "presentation-data-values: single-ASN1-type [0], octet-aligned [1] or arbitrary [2]";
    if t.tag != T_SEQ {
        return Err(bad_tag(L, t, "PDV-list SEQUENCE"));
    }
    let mut r = t.reader(L);
    let transfer_syntax = match r.optional(ber::OID, "transfer-syntax-name")? {
        Some(o) => Some(o.oid(L, "transfer-syntax-name OBJECT IDENTIFIER")?),
        None => None,
    };
    let p = r.expect(ber::INTEGER, "presentation-context-identifier INTEGER")?;
    let pcid = p.int(L, "presentation-context-identifier INTEGER")?;
    let v = r.read(VALUES)?;
    let (value, value_offset) = single_octets_or_bits(L, &v, VALUES)?;
    r.finish("end of PDV-list")?;
    Ok(Pdv { transfer_syntax, pcid, value, value_offset })
}

/// The `CHOICE { single-ASN1-type [0] ANY, octet-aligned [1] IMPLICIT OCTET
/// STRING, arbitrary [2] IMPLICIT BIT STRING }` shared by PDV-list and
/// EXTERNAL, with the value's offset (see [`Pdv::value_offset`]).
pub(crate) fn single_octets_or_bits<'a>(
    layer: Layer,
    v: &Tlv<'a>,
    what: &'static str,
) -> Result<(PdvValue<'a>, usize)> {
    if v.tag.class != Class::Context {
        return Err(bad_tag(layer, v, what));
    }
    match v.tag.number {
        0 => {
            let inner = explicit(layer, v, "single-ASN1-type [0]: exactly one BER value")?;
            Ok((PdvValue::Single(inner.raw), inner.offset))
        }
        1 => {
            let o = v.octets(layer, "octet-aligned [1] IMPLICIT OCTET STRING")?;
            Ok((PdvValue::OctetAligned(o), v.content_offset))
        }
        2 => {
            let b = v.bits(layer, "arbitrary [2] IMPLICIT BIT STRING")?;
            let off = if v.tag.constructed { v.content_offset } else { v.content_offset + 1 };
            Ok((PdvValue::Arbitrary(b), off))
        }
        _ => Err(bad_tag(layer, v, what)),
    }
}

// ---------------------------------------------------------------------------
// Emitting.

/// Append the canonical encoding of `p`.
pub fn emit(p: &Ppdu<'_>, out: &mut Vec<u8>) {
    match p {
        Ppdu::Cp(c) => emit_cp(c, out),
        Ppdu::Cpa(c) => emit_cpa(c, out),
        Ppdu::Cpr(c) => emit_cpr(c, out),
        Ppdu::Aru(a) => emit_aru(a, out),
        Ppdu::Arp(a) => emit_arp(a, out),
        Ppdu::UserData(u) => emit_user_data(u, out),
    }
}

fn emit_mode(out: &mut Vec<u8>, mode: Mode) {
    write_tlv(out, Tag::ctx_c(0), |o| write_int(o, Tag::ctx(0), mode.value()));
}

fn opt_bits(out: &mut Vec<u8>, tag: Tag, b: &Option<BitString<'_>>) {
    if let Some(b) = b {
        write_bits(out, tag, b);
    }
}

fn opt_octets(out: &mut Vec<u8>, tag: Tag, b: &Option<Octets<'_>>) {
    if let Some(b) = b {
        write_prim(out, tag, b);
    }
}

fn opt_int(out: &mut Vec<u8>, tag: Tag, v: Option<i64>) {
    if let Some(v) = v {
        write_int(out, tag, v);
    }
}

fn opt_explicit_bits(out: &mut Vec<u8>, tag: Tag, b: &Option<BitString<'_>>) {
    if let Some(b) = b {
        write_tlv(out, tag, |o| write_bits(o, ber::BIT_STRING, b));
    }
}

fn opt_explicit_int(out: &mut Vec<u8>, tag: Tag, v: Option<i64>) {
    if let Some(v) = v {
        write_tlv(out, tag, |o| write_int(o, ber::INTEGER, v));
    }
}

fn opt_user_data(out: &mut Vec<u8>, u: &Option<UserData<'_>>) {
    if let Some(u) = u {
        emit_user_data(u, out);
    }
}

fn emit_result_list(out: &mut Vec<u8>, tag: Tag, l: &Option<ResultList<'_>>) {
    let Some(l) = l else { return };
    write_tlv(out, tag, |o| {
        for r in l {
            write_tlv(o, T_SEQ, |o| {
                write_int(o, Tag::ctx(0), r.result);
                if let Some(t) = &r.transfer_syntax {
                    write_oid(o, Tag::ctx(1), t);
                }
                opt_int(o, Tag::ctx(2), r.provider_reason);
            });
        }
    });
}

/// Append a CP-type.
pub fn emit_cp(c: &Cp<'_>, out: &mut Vec<u8>) {
    write_tlv(out, T_SET, |o| {
        emit_mode(o, c.mode);
        if let Some(x) = c.x410_mode_parameters {
            o.extend_from_slice(x);
        }
        let Some(n) = &c.normal else { return };
        write_tlv(o, Tag::ctx_c(2), |o| {
            opt_bits(o, Tag::ctx(0), &n.protocol_version);
            opt_octets(o, Tag::ctx(1), &n.calling_selector);
            opt_octets(o, Tag::ctx(2), &n.called_selector);
            if let Some(l) = &n.context_list {
                write_tlv(o, Tag::ctx_c(4), |o| {
                    for d in l {
                        write_tlv(o, T_SEQ, |o| {
                            write_int(o, ber::INTEGER, d.pcid);
                            write_oid(o, ber::OID, &d.abstract_syntax);
                            write_oid_list(o, T_SEQ, &d.transfer_syntaxes);
                        });
                    }
                });
            }
            if let Some(d) = &n.default_context_name {
                write_tlv(o, Tag::ctx_c(6), |o| {
                    write_oid(o, Tag::ctx(0), &d.abstract_syntax);
                    write_oid(o, Tag::ctx(1), &d.transfer_syntax);
                });
            }
            opt_bits(o, Tag::ctx(8), &n.presentation_requirements);
            opt_bits(o, Tag::ctx(9), &n.user_session_requirements);
            opt_explicit_bits(o, Tag::ctx_c(11), &n.protocol_options);
            opt_explicit_int(o, Tag::ctx_c(12), n.initiators_nominated_context);
            if let Some(e) = &n.extensions {
                write_tlv(o, Tag::ctx_c(14), |o| o.extend_from_slice(e));
            }
            opt_user_data(o, &n.user_data);
        });
    });
}

/// Append a CPA-PPDU.
pub fn emit_cpa(c: &Cpa<'_>, out: &mut Vec<u8>) {
    write_tlv(out, T_SET, |o| {
        emit_mode(o, c.mode);
        if let Some(x) = c.x410_mode_parameters {
            o.extend_from_slice(x);
        }
        let Some(n) = &c.normal else { return };
        write_tlv(o, Tag::ctx_c(2), |o| {
            opt_bits(o, Tag::ctx(0), &n.protocol_version);
            opt_octets(o, Tag::ctx(3), &n.responding_selector);
            emit_result_list(o, Tag::ctx_c(5), &n.result_list);
            opt_bits(o, Tag::ctx(8), &n.presentation_requirements);
            opt_bits(o, Tag::ctx(9), &n.user_session_requirements);
            opt_explicit_bits(o, Tag::ctx_c(11), &n.protocol_options);
            opt_explicit_int(o, Tag::ctx_c(13), n.responders_nominated_context);
            opt_user_data(o, &n.user_data);
        });
    });
}

/// Append a CPR-PPDU.
pub fn emit_cpr(c: &Cpr<'_>, out: &mut Vec<u8>) {
    match c {
        Cpr::X410 { raw } => out.extend_from_slice(raw),
        Cpr::Normal(n) => write_tlv(out, T_SEQ, |o| {
            opt_bits(o, Tag::ctx(0), &n.protocol_version);
            opt_octets(o, Tag::ctx(3), &n.responding_selector);
            emit_result_list(o, Tag::ctx_c(5), &n.result_list);
            opt_int(o, Tag::ctx(7), n.default_context_result);
            opt_int(o, Tag::ctx(10), n.provider_reason);
            opt_user_data(o, &n.user_data);
        }),
    }
}

/// Append an ARU-PPDU.
pub fn emit_aru(a: &Aru<'_>, out: &mut Vec<u8>) {
    match a {
        Aru::X410 { raw } => out.extend_from_slice(raw),
        Aru::Normal(n) => write_tlv(out, Tag::ctx_c(0), |o| {
            if let Some(l) = &n.context_ids {
                write_tlv(o, Tag::ctx_c(0), |o| {
                    for c in l {
                        write_tlv(o, T_SEQ, |o| {
                            write_int(o, ber::INTEGER, c.pcid);
                            write_oid(o, ber::OID, &c.transfer_syntax);
                        });
                    }
                });
            }
            opt_user_data(o, &n.user_data);
        }),
    }
}

/// Append an ARP-PPDU.
pub fn emit_arp(a: &Arp, out: &mut Vec<u8>) {
    write_tlv(out, T_SEQ, |o| {
        opt_int(o, Tag::ctx(0), a.provider_reason);
        opt_int(o, Tag::ctx(1), a.event_identifier);
    });
}

/// Append a User-data.
pub fn emit_user_data(u: &UserData<'_>, out: &mut Vec<u8>) {
    match u {
        UserData::Simple(o) => write_prim(out, T_SIMPLE, o),
        UserData::Full(l) => write_tlv(out, T_FULL, |o| {
            for p in l {
                write_tlv(o, T_SEQ, |o| {
                    if let Some(t) = &p.transfer_syntax {
                        write_oid(o, ber::OID, t);
                    }
                    write_int(o, ber::INTEGER, p.pcid);
                    emit_pdv_value(o, &p.value);
                });
            }
        }),
    }
}

/// Write the presentation-data-values / EXTERNAL encoding CHOICE.
pub(crate) fn emit_pdv_value(out: &mut Vec<u8>, v: &PdvValue<'_>) {
    match v {
        PdvValue::Single(raw) => write_tlv(out, Tag::ctx_c(0), |o| o.extend_from_slice(raw)),
        PdvValue::OctetAligned(b) => write_prim(out, Tag::ctx(1), b),
        PdvValue::Arbitrary(b) => write_bits(out, Tag::ctx(2), b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;
    use std::borrow::Cow;

    #[test]
    fn owned_syntax_is_the_owned_copy() {
        // The constants come back borrowed (no allocation), anything else
        // (a prefix, an extension, a neighbour of a constant) as a copy;
        // all equal to the owned copy.
        let borrowed = |o: &Oid<'_>| matches!(o.0, Cow::Borrowed(_));
        for k in [ID_AS_ACSE, BER, ID_AS_MTA_RTSE, ID_AS_MTSE] {
            let read = Oid(Cow::Owned(k.as_bytes().to_vec()));
            let o = owned_syntax(&read);
            assert_eq!(o, read.clone().into_owned());
            assert!(borrowed(&o), "{k}");
            let mut longer = k.as_bytes().to_vec();
            longer.push(1);
            let mut next = k.as_bytes().to_vec();
            *next.last_mut().unwrap() += 1;
            for other in [&k.as_bytes()[..1], &longer[..], &next[..]] {
                let read = Oid::from_raw(other);
                let o = owned_syntax(&read);
                assert_eq!(o, read.clone().into_owned());
                assert!(!borrowed(&o), "{o}");
            }
        }
    }

    #[test]
    fn turn_please_user_data() {
        let b = hex::decode("610a3008020103a003020100").unwrap();
        let (u, rest) = parse_user_data(&b).unwrap();
        assert!(rest.is_empty());
        let p = u.single().unwrap();
        assert_eq!((p.pcid, p.value.clone(), p.value_offset), (3, PdvValue::Single(&[2, 1, 0]), 9));
        let mut out = Vec::new();
        emit_user_data(&u, &mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn mode_of_connect_decodes_in_any_order() {
        assert_eq!(mode_of_connect(&hex::decode("3105a003800101").unwrap()), Some(Mode::Normal));
        assert_eq!(mode_of_connect(&hex::decode("3107a100a003800100").unwrap()), Some(Mode::X410));
        assert_eq!(mode_of_connect(&hex::decode("3180a100a08080010000000000").unwrap()), Some(Mode::X410));
        assert_eq!(mode_of_connect(&hex::decode("3105a003800102").unwrap()), None);
        assert_eq!(mode_of_connect(&[]), None);
    }

    #[test]
    fn duplicate_set_member_is_an_error_at_its_offset() {
        let b = hex::decode("310aa003800101a003800101").unwrap();
        let e = parse_cp(&b).unwrap_err();
        assert_eq!((e.offset, e.found), (7, Found::Other("a duplicate member")));
    }
}
