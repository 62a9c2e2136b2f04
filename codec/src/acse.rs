//! X.227 / ISO 8650-1 ACSE APDUs (normal mode only): AARQ, AARE, RLRQ,
//! RLRE, ABRT, and the 1988 EXTERNAL they carry user information in.
//!
//! The APDUs are `[APPLICATION n] IMPLICIT SEQUENCE`s in an EXPLICIT
//! tagging environment. Members must come in ASN.1 order (a member seen
//! twice is an error at the second one's offset). Every APDU has an
//! extension marker (X.227bis), so members this module does not know —
//! including the higher-level-association extension additions — are
//! kept raw in `extensions` (in the order received) and written back
//! before `user-information`, where X.227bis places them.
//!
//! AP titles and AE qualifiers are typed only in their simple forms (OID,
//! INTEGER); the directory-name forms are kept as their raw TLV.
//!
//! [`parse_external`] / [`emit_external`] are public because RTSE's
//! transfer content (the concatenated RTTRapdu octets) is an EXTERNAL too.

use crate::ber::{self, write_bits, write_int, write_prim, write_tlv, BitString, Class, Octets, Oid, Reader, Tag, Tlv};
use crate::error::{Error, Layer, Result};
use crate::inline::InlineList;
use crate::presentation::{
    absent, bad_tag, check_count, emit_pdv_value, explicit, list_into, oid_list, single_octets_or_bits, write_oid,
    write_oid_list, Members, PdvValue,
};

const L: Layer = Layer::Acse;

/// Abort source acse-service-user(0).
pub const ABORT_SOURCE_USER: i64 = 0;
/// Abort source acse-service-provider(1).
pub const ABORT_SOURCE_PROVIDER: i64 = 1;
/// AARE result accepted(0).
pub const RESULT_ACCEPTED: i64 = 0;
/// AARE result rejected-permanent(1).
pub const RESULT_REJECTED_PERMANENT: i64 = 1;
/// AARE result rejected-transient(2).
pub const RESULT_REJECTED_TRANSIENT: i64 = 2;

const T_USER_INFO: Tag = Tag::ctx_c(30);

/// An ACSE APDU. JSON: `{"pdu": "AARQ", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "pdu")]
pub enum AcseApdu<'a> {
    #[serde(rename = "AARQ")]
    Aarq(Aarq<'a>),
    #[serde(rename = "AARE")]
    Aare(Aare<'a>),
    #[serde(rename = "RLRQ")]
    Rlrq(Rlrq<'a>),
    #[serde(rename = "RLRE")]
    Rlre(Rlre<'a>),
    #[serde(rename = "ABRT")]
    Abrt(Abrt<'a>),
}

impl<'a> AcseApdu<'a> {
    /// Standard abbreviation (`"AARQ"`, ...).
    pub const fn name(&self) -> &'static str {
        match self {
            AcseApdu::Aarq(_) => "AARQ",
            AcseApdu::Aare(_) => "AARE",
            AcseApdu::Rlrq(_) => "RLRQ",
            AcseApdu::Rlre(_) => "RLRE",
            AcseApdu::Abrt(_) => "ABRT",
        }
    }
    /// The user-information EXTERNALs (empty when absent).
    pub fn user_information(&self) -> &[External<'a>] {
        let u = match self {
            AcseApdu::Aarq(a) => &a.user_information,
            AcseApdu::Aare(a) => &a.user_information,
            AcseApdu::Rlrq(a) => &a.user_information,
            AcseApdu::Rlre(a) => &a.user_information,
            AcseApdu::Abrt(a) => &a.user_information,
        };
        u.as_deref().unwrap_or(&[])
    }
}

/// AP-title: form 2 (OBJECT IDENTIFIER) typed; form 1 (directory Name) and
/// anything else kept as the raw TLV inside the explicit tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApTitle<'a> {
    Oid(Oid<'a>),
    Raw(Octets<'a>),
}

/// AE-qualifier: form 2 (INTEGER) typed; form 1 (RDN) and anything else
/// kept as the raw TLV inside the explicit tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AeQualifier<'a> {
    Int(i64),
    Raw(Octets<'a>),
}

/// The four members naming one side of an association: AP title, AE
/// qualifier, AP and AE invocation identifiers (AARQ called / calling,
/// AARE responding).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct AeTitle<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ap_title: Option<ApTitle<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ae_qualifier: Option<AeQualifier<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ap_invocation_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ae_invocation_id: Option<i64>,
}

impl AeTitle<'_> {
    pub fn is_empty(&self) -> bool {
        self.ap_title.is_none()
            && self.ae_qualifier.is_none()
            && self.ap_invocation_id.is_none()
            && self.ae_invocation_id.is_none()
    }
}

/// A-ASSOCIATE request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Aarq<'a> {
    /// DEFAULT {version1}; `Some` when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<BitString<'a>>,
    pub application_context_name: Oid<'a>,
    /// called-AP-title `[2]` .. called-AE-invocation-identifier `[5]`.
    #[serde(skip_serializing_if = "AeTitle::is_empty")]
    pub called: AeTitle<'a>,
    /// calling-AP-title `[6]` .. calling-AE-invocation-identifier `[9]`.
    #[serde(skip_serializing_if = "AeTitle::is_empty")]
    pub calling: AeTitle<'a>,
    /// authentication(0), aSO-context-negotiation(1), ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_acse_requirements: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism_name: Option<Oid<'a>>,
    /// calling-authentication-value `[12]`: the raw Authentication-value TLV
    /// inside the explicit tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_authentication_value: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_context_name_list: Option<Vec<Oid<'a>>>,
    /// implementation-information `[29]` GraphicString.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_information: Option<Octets<'a>>,
    /// Members after the extension marker this module does not type, raw TLVs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Octets<'a>>,
    /// user-information `[30]`; `None` when absent, `Some(empty)` for `be 00`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_information: Option<UserInformation<'a>>,
}

impl<'a> Aarq<'a> {
    /// An AARQ with only the application context name.
    pub fn new(application_context_name: Oid<'a>) -> Self {
        Aarq {
            protocol_version: None,
            application_context_name,
            called: AeTitle::default(),
            calling: AeTitle::default(),
            sender_acse_requirements: None,
            mechanism_name: None,
            calling_authentication_value: None,
            application_context_name_list: None,
            implementation_information: None,
            extensions: Vec::new(),
            user_information: None,
        }
    }
    /// Whether version1 is proposed (true when protocol-version is absent).
    pub fn version1(&self) -> bool {
        self.protocol_version.as_ref().is_none_or(|b| b.bit(0))
    }
}

/// result-source-diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceDiagnostic {
    /// acse-service-user `[1]`: null(0), no-reason-given(1),
    /// application-context-name-not-supported(2), ... authentication-required(14).
    User(i64),
    /// acse-service-provider `[2]`: null(0), no-reason-given(1), no-common-acse-version(2).
    Provider(i64),
}

/// A-ASSOCIATE response (accept or reject).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Aare<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<BitString<'a>>,
    pub application_context_name: Oid<'a>,
    /// accepted(0), rejected-permanent(1), rejected-transient(2).
    pub result: i64,
    pub result_source_diagnostic: SourceDiagnostic,
    /// responding-AP-title `[4]` .. responding-AE-invocation-identifier `[7]`.
    #[serde(skip_serializing_if = "AeTitle::is_empty")]
    pub responding: AeTitle<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responder_acse_requirements: Option<BitString<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism_name: Option<Oid<'a>>,
    /// responding-authentication-value `[10]`: raw Authentication-value TLV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responding_authentication_value: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_context_name_list: Option<Vec<Oid<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_information: Option<Octets<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_information: Option<UserInformation<'a>>,
}

impl<'a> Aare<'a> {
    /// An AARE with the mandatory members only.
    pub fn new(application_context_name: Oid<'a>, result: i64, diag: SourceDiagnostic) -> Self {
        Aare {
            protocol_version: None,
            application_context_name,
            result,
            result_source_diagnostic: diag,
            responding: AeTitle::default(),
            responder_acse_requirements: None,
            mechanism_name: None,
            responding_authentication_value: None,
            application_context_name_list: None,
            implementation_information: None,
            extensions: Vec::new(),
            user_information: None,
        }
    }
    pub fn accepted(&self) -> bool {
        self.result == RESULT_ACCEPTED
    }
    /// Whether version1 is selected (true when protocol-version is absent).
    pub fn version1(&self) -> bool {
        self.protocol_version.as_ref().is_none_or(|b| b.bit(0))
    }
}

/// A-RELEASE request.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Rlrq<'a> {
    /// normal(0), urgent(1), user-defined(30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_information: Option<UserInformation<'a>>,
}

/// A-RELEASE response.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Rlre<'a> {
    /// normal(0), not-finished(1), user-defined(30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_information: Option<UserInformation<'a>>,
}

/// A-ABORT.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Abrt<'a> {
    /// acse-service-user(0), acse-service-provider(1).
    pub abort_source: i64,
    /// no-reason-given(1), protocol-error(2), ... authentication-required(6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_diagnostic: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Octets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_information: Option<UserInformation<'a>>,
}

/// The encoding CHOICE of an EXTERNAL: the same shape as a PDV's
/// presentation-data-values (`Single` = the raw TLV of the one value inside
/// `[0]`, `OctetAligned`, `Arbitrary`).
pub type ExternalEncoding<'a> = PdvValue<'a>;

/// An ACSE user-information list: one EXTERNAL inline (RTSE sends one).
pub type UserInformation<'a> = InlineList<External<'a>, 1>;

/// EXTERNAL (X.208-1988 shape, `[UNIVERSAL 8] IMPLICIT SEQUENCE`, `28 ..`).
#[derive(Debug, Clone, Eq, serde::Serialize)]
pub struct External<'a> {
    /// The transfer syntax (when the presentation context does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_reference: Option<Oid<'a>>,
    /// The presentation context identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indirect_reference: Option<i64>,
    /// ObjectDescriptor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_value_descriptor: Option<Octets<'a>>,
    pub encoding: ExternalEncoding<'a>,
    /// Offset of the encoding's value in the input given to parse (the
    /// identifier octet of the single value; see
    /// [`crate::presentation::Pdv::value_offset`]). Ignored by `==`.
    #[serde(skip)]
    pub value_offset: usize,
}

impl PartialEq for External<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.direct_reference == o.direct_reference
            && self.indirect_reference == o.indirect_reference
            && self.data_value_descriptor == o.data_value_descriptor
            && self.encoding == o.encoding
    }
}

/// The filler of unused [`UserInformation`] slots: an empty
/// single-ASN1-type value.
impl Default for External<'_> {
    fn default() -> Self {
        External::single(0, &[])
    }
}

impl<'a> External<'a> {
    /// `EXTERNAL { indirect-reference pcid, single-ASN1-type raw }`, the
    /// shape RTSE uses.
    pub const fn single(pcid: i64, raw: &'a [u8]) -> Self {
        External {
            direct_reference: None,
            indirect_reference: Some(pcid),
            data_value_descriptor: None,
            encoding: PdvValue::Single(raw),
            value_offset: 0,
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing.

/// Parse one ACSE APDU.
pub fn parse(input: &[u8]) -> Result<(AcseApdu<'_>, &[u8])> {
    let mut out = None;
    let rest = parse_into(input, &mut out)?;
    match out {
        Some(apdu) => Ok((apdu, rest)),
        // parse_into fills `out` whenever it succeeds.
        None => Err(Error::eof(L, 0, "ACSE APDU")),
    }
}

/// [`parse`] into `out` (`None` on entry; `Some` on success, `None` on
/// error), in place: an AARQ or AARE is a few hundred octets, copied on
/// every move.
pub fn parse_into<'a>(input: &'a [u8], out: &mut Option<AcseApdu<'a>>) -> Result<&'a [u8]> {
    let r = parse_in_place(input, out);
    if r.is_err() {
        *out = None;
    }
    r
}

fn parse_in_place<'a>(input: &'a [u8], out: &mut Option<AcseApdu<'a>>) -> Result<&'a [u8]> {
    const WHAT: &str = "ACSE APDU: AARQ [APPLICATION 0] .. ABRT [APPLICATION 4]";
    let mut r = Reader::new(L, input);
    let t = r.read(WHAT)?;
    if t.tag.class != Class::Application || !t.tag.constructed {
        return Err(bad_tag(L, &t, WHAT));
    }
    match t.tag.number {
        0 => {
            if let AcseApdu::Aarq(a) = out.insert(AcseApdu::Aarq(Aarq::new(ID_PLACEHOLDER))) {
                parse_aarq(&t, a)?;
            }
            return Ok(r.rest());
        }
        1 => {
            let aare = Aare::new(ID_PLACEHOLDER, 0, SourceDiagnostic::User(0));
            if let AcseApdu::Aare(a) = out.insert(AcseApdu::Aare(aare)) {
                parse_aare(&t, a)?;
            }
            return Ok(r.rest());
        }
        _ => {}
    }
    let apdu = match t.tag.number {
        2 => AcseApdu::Rlrq(
            parse_release(&t, "RLRQ member", "reason [0] IMPLICIT Release-request-reason")
                .map(|(reason, extensions, user_information)| Rlrq { reason, extensions, user_information })?,
        ),
        3 => AcseApdu::Rlre(
            parse_release(&t, "RLRE member", "reason [0] IMPLICIT Release-response-reason")
                .map(|(reason, extensions, user_information)| Rlre { reason, extensions, user_information })?,
        ),
        4 => AcseApdu::Abrt(parse_abrt(&t)?),
        _ => return Err(bad_tag(L, &t, WHAT)),
    };
    *out = Some(apdu);
    Ok(r.rest())
}

fn explicit_int(t: &Tlv<'_>, what: &'static str) -> Result<i64> {
    let inner = explicit(L, t, what)?;
    if inner.tag != ber::INTEGER {
        return Err(bad_tag(L, &inner, what));
    }
    inner.int(L, what)
}

fn explicit_oid<'a>(t: &Tlv<'a>, what: &'static str) -> Result<Oid<'a>> {
    let inner = explicit(L, t, what)?;
    if inner.tag != ber::OID {
        return Err(bad_tag(L, &inner, what));
    }
    inner.oid(L, what)
}

fn ap_title<'a>(t: &Tlv<'a>, what: &'static str) -> Result<ApTitle<'a>> {
    let inner = explicit(L, t, what)?;
    if inner.tag == ber::OID {
        return Ok(ApTitle::Oid(inner.oid(L, what)?));
    }
    Ok(ApTitle::Raw(Octets::borrowed(inner.raw)))
}

fn ae_qualifier<'a>(t: &Tlv<'a>, what: &'static str) -> Result<AeQualifier<'a>> {
    let inner = explicit(L, t, what)?;
    if inner.tag == ber::INTEGER {
        // A form-2 qualifier too long for an i64 stays raw.
        if let Ok(v) = inner.int(L, what) {
            return Ok(AeQualifier::Int(v));
        }
    }
    Ok(AeQualifier::Raw(Octets::borrowed(inner.raw)))
}

fn raw_inner<'a>(t: &Tlv<'a>, what: &'static str) -> Result<Octets<'a>> {
    Ok(Octets::borrowed(explicit(L, t, what)?.raw))
}

/// One of the AE title groups: tags `base .. base+3`.
fn ae_member<'a>(ae: &mut AeTitle<'a>, k: u32, m: &Tlv<'a>, names: &[&'static str; 4]) -> Result<()> {
    match k {
        0 => ae.ap_title = Some(ap_title(m, names[0])?),
        1 => ae.ae_qualifier = Some(ae_qualifier(m, names[1])?),
        2 => ae.ap_invocation_id = Some(explicit_int(m, names[2])?),
        _ => ae.ae_invocation_id = Some(explicit_int(m, names[3])?),
    }
    Ok(())
}

const CALLED: [&str; 4] = [
    "called-AP-title [2]",
    "called-AE-qualifier [3]",
    "called-AP-invocation-identifier [4] INTEGER",
    "called-AE-invocation-identifier [5] INTEGER",
];
const CALLING: [&str; 4] = [
    "calling-AP-title [6]",
    "calling-AE-qualifier [7]",
    "calling-AP-invocation-identifier [8] INTEGER",
    "calling-AE-invocation-identifier [9] INTEGER",
];
const RESPONDING: [&str; 4] = [
    "responding-AP-title [4]",
    "responding-AE-qualifier [5]",
    "responding-AP-invocation-identifier [6] INTEGER",
    "responding-AE-invocation-identifier [7] INTEGER",
];

fn push_extension<'a>(ext: &mut Vec<Octets<'a>>, m: &Tlv<'a>) -> Result<()> {
    check_count(L, m, ext.len(), "extension member")?;
    ext.push(Octets::borrowed(m.raw));
    Ok(())
}

/// The user-information list `m`, into `out` (empty on entry), in place.
fn user_information<'a>(m: &Tlv<'a>, out: &mut UserInformation<'a>) -> Result<()> {
    list_into(L, m, "user-information [30] IMPLICIT SEQUENCE OF EXTERNAL", out, |e| external_from_tlv(L, &e))
}

/// Fill `a` (`Aarq::new(ID_PLACEHOLDER)` on entry) from the AARQ `t`.
fn parse_aarq<'a>(t: &Tlv<'a>, a: &mut Aarq<'a>) -> Result<()> {
    let mut r = t.reader(L);
    let mut seen = Members::sequence();
    let mut acn = None;
    while !r.is_empty() {
        let m = r.read("AARQ member")?;
        let n = if m.tag.class == Class::Context { m.tag.number } else { u32::MAX };
        match n {
            0 => {
                seen.mark(L, 0, &m, "protocol-version [0]")?;
                a.protocol_version = Some(m.bits(L, "protocol-version [0] IMPLICIT BIT STRING")?);
            }
            1 => {
                seen.mark(L, 1, &m, "application-context-name [1]")?;
                acn = Some(explicit_oid(&m, "application-context-name [1] OBJECT IDENTIFIER")?);
            }
            2..=5 => {
                seen.mark(L, n, &m, CALLED[(n - 2) as usize])?;
                ae_member(&mut a.called, n - 2, &m, &CALLED)?;
            }
            6..=9 => {
                seen.mark(L, n, &m, CALLING[(n - 6) as usize])?;
                ae_member(&mut a.calling, n - 6, &m, &CALLING)?;
            }
            10 => {
                seen.mark(L, 10, &m, "sender-acse-requirements [10]")?;
                a.sender_acse_requirements = Some(m.bits(L, "sender-acse-requirements [10] IMPLICIT BIT STRING")?);
            }
            11 => {
                seen.mark(L, 11, &m, "mechanism-name [11]")?;
                a.mechanism_name = Some(m.oid(L, "mechanism-name [11] IMPLICIT OBJECT IDENTIFIER")?);
            }
            12 => {
                seen.mark(L, 12, &m, "calling-authentication-value [12]")?;
                a.calling_authentication_value = Some(raw_inner(&m, "calling-authentication-value [12]")?);
            }
            13 => {
                seen.mark(L, 13, &m, "application-context-name-list [13]")?;
                a.application_context_name_list =
                    Some(oid_list(L, &m, "application-context-name-list [13] IMPLICIT SEQUENCE OF OBJECT IDENTIFIER")?);
            }
            29 => {
                seen.mark(L, 29, &m, "implementation-information [29]")?;
                a.implementation_information =
                    Some(m.octets(L, "implementation-information [29] IMPLICIT GraphicString")?);
            }
            30 => {
                seen.mark(L, 30, &m, "user-information [30]")?;
                user_information(&m, a.user_information.insert(UserInformation::new()))?;
            }
            _ => push_extension(&mut a.extensions, &m)?,
        }
    }
    a.application_context_name = acn.ok_or_else(|| absent(L, t, "application-context-name [1] in AARQ"))?;
    Ok(())
}

/// Placeholder until the mandatory member is read (never returned).
const ID_PLACEHOLDER: Oid<'static> = Oid::from_raw(&[]);

/// Fill `a` (`Aare::new(ID_PLACEHOLDER, 0, User(0))` on entry) from the
/// AARE `t`.
fn parse_aare<'a>(t: &Tlv<'a>, a: &mut Aare<'a>) -> Result<()> {
    let mut r = t.reader(L);
    let mut seen = Members::sequence();
    let (mut acn, mut result, mut diag) = (None, None, None);
    while !r.is_empty() {
        let m = r.read("AARE member")?;
        let n = if m.tag.class == Class::Context { m.tag.number } else { u32::MAX };
        match n {
            0 => {
                seen.mark(L, 0, &m, "protocol-version [0]")?;
                a.protocol_version = Some(m.bits(L, "protocol-version [0] IMPLICIT BIT STRING")?);
            }
            1 => {
                seen.mark(L, 1, &m, "application-context-name [1]")?;
                acn = Some(explicit_oid(&m, "application-context-name [1] OBJECT IDENTIFIER")?);
            }
            2 => {
                seen.mark(L, 2, &m, "result [2]")?;
                result = Some(explicit_int(&m, "result [2] Associate-result INTEGER")?);
            }
            3 => {
                seen.mark(L, 3, &m, "result-source-diagnostic [3]")?;
                diag = Some(source_diagnostic(&m)?);
            }
            4..=7 => {
                seen.mark(L, n, &m, RESPONDING[(n - 4) as usize])?;
                ae_member(&mut a.responding, n - 4, &m, &RESPONDING)?;
            }
            8 => {
                seen.mark(L, 8, &m, "responder-acse-requirements [8]")?;
                a.responder_acse_requirements = Some(m.bits(L, "responder-acse-requirements [8] IMPLICIT BIT STRING")?);
            }
            9 => {
                seen.mark(L, 9, &m, "mechanism-name [9]")?;
                a.mechanism_name = Some(m.oid(L, "mechanism-name [9] IMPLICIT OBJECT IDENTIFIER")?);
            }
            10 => {
                seen.mark(L, 10, &m, "responding-authentication-value [10]")?;
                a.responding_authentication_value = Some(raw_inner(&m, "responding-authentication-value [10]")?);
            }
            11 => {
                seen.mark(L, 11, &m, "application-context-name-list [11]")?;
                a.application_context_name_list =
                    Some(oid_list(L, &m, "application-context-name-list [11] IMPLICIT SEQUENCE OF OBJECT IDENTIFIER")?);
            }
            29 => {
                seen.mark(L, 29, &m, "implementation-information [29]")?;
                a.implementation_information =
                    Some(m.octets(L, "implementation-information [29] IMPLICIT GraphicString")?);
            }
            30 => {
                seen.mark(L, 30, &m, "user-information [30]")?;
                user_information(&m, a.user_information.insert(UserInformation::new()))?;
            }
            _ => push_extension(&mut a.extensions, &m)?,
        }
    }
    a.application_context_name = acn.ok_or_else(|| absent(L, t, "application-context-name [1] in AARE"))?;
    a.result = result.ok_or_else(|| absent(L, t, "result [2] in AARE"))?;
    a.result_source_diagnostic = diag.ok_or_else(|| absent(L, t, "result-source-diagnostic [3] in AARE"))?;
    Ok(())
}

fn source_diagnostic(t: &Tlv<'_>) -> Result<SourceDiagnostic> {
    const WHAT: &str = "result-source-diagnostic: acse-service-user [1] or acse-service-provider [2]";
    let inner = explicit(L, t, WHAT)?;
    if inner.tag == Tag::ctx_c(1) {
        Ok(SourceDiagnostic::User(explicit_int(&inner, "acse-service-user [1] INTEGER")?))
    } else if inner.tag == Tag::ctx_c(2) {
        Ok(SourceDiagnostic::Provider(explicit_int(&inner, "acse-service-provider [2] INTEGER")?))
    } else {
        Err(bad_tag(L, &inner, WHAT))
    }
}

type Release<'a> = (Option<i64>, Vec<Octets<'a>>, Option<UserInformation<'a>>);

fn parse_release<'a>(t: &Tlv<'a>, what: &'static str, reason_what: &'static str) -> Result<Release<'a>> {
    let mut r = t.reader(L);
    let mut seen = Members::sequence();
    let (mut reason, mut ext, mut ui) = (None, Vec::new(), None);
    while !r.is_empty() {
        let m = r.read(what)?;
        if m.tag == Tag::ctx(0) || m.tag == Tag::ctx_c(0) {
            seen.mark(L, 0, &m, "reason [0]")?;
            reason = Some(m.int(L, reason_what)?);
        } else if m.tag.class == Class::Context && m.tag.number == 30 {
            seen.mark(L, 30, &m, "user-information [30]")?;
            user_information(&m, ui.insert(UserInformation::new()))?;
        } else {
            push_extension(&mut ext, &m)?;
        }
    }
    Ok((reason, ext, ui))
}

fn parse_abrt<'a>(t: &Tlv<'a>) -> Result<Abrt<'a>> {
    let mut r = t.reader(L);
    let mut seen = Members::sequence();
    let mut a = Abrt::default();
    while !r.is_empty() {
        let m = r.read("ABRT member")?;
        let n = if m.tag.class == Class::Context { m.tag.number } else { u32::MAX };
        match n {
            0 => {
                seen.mark(L, 0, &m, "abort-source [0]")?;
                a.abort_source = m.int(L, "abort-source [0] IMPLICIT INTEGER")?;
            }
            1 => {
                seen.mark(L, 1, &m, "abort-diagnostic [1]")?;
                a.abort_diagnostic = Some(m.int(L, "abort-diagnostic [1] IMPLICIT ENUMERATED")?);
            }
            30 => {
                seen.mark(L, 30, &m, "user-information [30]")?;
                user_information(&m, a.user_information.insert(UserInformation::new()))?;
            }
            _ => push_extension(&mut a.extensions, &m)?,
        }
    }
    if !seen.has(0) {
        return Err(absent(L, t, "abort-source [0] in ABRT"));
    }
    Ok(a)
}

/// Parse one EXTERNAL (errors labelled [`Layer::Acse`]).
pub fn parse_external(input: &[u8]) -> Result<(External<'_>, &[u8])> {
    parse_external_as(L, input)
}

/// Parse one EXTERNAL, labelling errors with `layer` (RTSE reuses this for
/// its reassembled transfer content).
pub fn parse_external_as(layer: Layer, input: &[u8]) -> Result<(External<'_>, &[u8])> {
    let mut r = Reader::new(layer, input);
    let t = r.read("EXTERNAL")?;
    Ok((external_from_tlv(layer, &t)?, r.rest()))
}

fn external_from_tlv<'a>(layer: Layer, t: &Tlv<'a>) -> Result<External<'a>> {
    const ENC: &str = "EXTERNAL encoding: single-ASN1-type [0], octet-aligned [1] or arbitrary [2]";
    if t.tag != ber::EXTERNAL {
        return Err(bad_tag(layer, t, "EXTERNAL [UNIVERSAL 8]"));
    }
    let mut r = t.reader(layer);
    let direct_reference = match r.optional(ber::OID, "direct-reference")? {
        Some(o) => Some(o.oid(layer, "direct-reference OBJECT IDENTIFIER")?),
        None => None,
    };
    let indirect_reference = match r.optional(ber::INTEGER, "indirect-reference")? {
        Some(i) => Some(i.int(layer, "indirect-reference INTEGER")?),
        None => None,
    };
    let data_value_descriptor = match r.peek_tag() {
        Some(tag) if tag.same_type(ber::OBJECT_DESCRIPTOR) => {
            let d = r.read("data-value-descriptor")?;
            Some(d.octets(layer, "data-value-descriptor ObjectDescriptor")?)
        }
        _ => None,
    };
    let v = r.read(ENC)?;
    let (encoding, value_offset) = single_octets_or_bits(layer, &v, ENC)?;
    r.finish("end of EXTERNAL")?;
    Ok(External { direct_reference, indirect_reference, data_value_descriptor, encoding, value_offset })
}

// ---------------------------------------------------------------------------
// Emitting.

/// Append the canonical encoding of `apdu`.
pub fn emit(apdu: &AcseApdu<'_>, out: &mut Vec<u8>) {
    match apdu {
        AcseApdu::Aarq(a) => write_tlv(out, Tag::app_c(0), |o| {
            opt_bits(o, Tag::ctx(0), &a.protocol_version);
            write_tlv(o, Tag::ctx_c(1), |o| write_oid(o, ber::OID, &a.application_context_name));
            emit_ae(o, 2, &a.called);
            emit_ae(o, 6, &a.calling);
            opt_bits(o, Tag::ctx(10), &a.sender_acse_requirements);
            if let Some(m) = &a.mechanism_name {
                write_oid(o, Tag::ctx(11), m);
            }
            opt_raw_explicit(o, Tag::ctx_c(12), &a.calling_authentication_value);
            if let Some(l) = &a.application_context_name_list {
                write_oid_list(o, Tag::ctx_c(13), l);
            }
            emit_tail(o, &a.implementation_information, &a.extensions, &a.user_information);
        }),
        AcseApdu::Aare(a) => write_tlv(out, Tag::app_c(1), |o| {
            opt_bits(o, Tag::ctx(0), &a.protocol_version);
            write_tlv(o, Tag::ctx_c(1), |o| write_oid(o, ber::OID, &a.application_context_name));
            write_tlv(o, Tag::ctx_c(2), |o| write_int(o, ber::INTEGER, a.result));
            write_tlv(o, Tag::ctx_c(3), |o| {
                let (tag, v) = match a.result_source_diagnostic {
                    SourceDiagnostic::User(v) => (Tag::ctx_c(1), v),
                    SourceDiagnostic::Provider(v) => (Tag::ctx_c(2), v),
                };
                write_tlv(o, tag, |o| write_int(o, ber::INTEGER, v));
            });
            emit_ae(o, 4, &a.responding);
            opt_bits(o, Tag::ctx(8), &a.responder_acse_requirements);
            if let Some(m) = &a.mechanism_name {
                write_oid(o, Tag::ctx(9), m);
            }
            opt_raw_explicit(o, Tag::ctx_c(10), &a.responding_authentication_value);
            if let Some(l) = &a.application_context_name_list {
                write_oid_list(o, Tag::ctx_c(11), l);
            }
            emit_tail(o, &a.implementation_information, &a.extensions, &a.user_information);
        }),
        AcseApdu::Rlrq(a) => write_tlv(out, Tag::app_c(2), |o| {
            if let Some(r) = a.reason {
                write_int(o, Tag::ctx(0), r);
            }
            emit_tail(o, &None, &a.extensions, &a.user_information);
        }),
        AcseApdu::Rlre(a) => write_tlv(out, Tag::app_c(3), |o| {
            if let Some(r) = a.reason {
                write_int(o, Tag::ctx(0), r);
            }
            emit_tail(o, &None, &a.extensions, &a.user_information);
        }),
        AcseApdu::Abrt(a) => write_tlv(out, Tag::app_c(4), |o| {
            write_int(o, Tag::ctx(0), a.abort_source);
            if let Some(d) = a.abort_diagnostic {
                write_int(o, Tag::ctx(1), d);
            }
            emit_tail(o, &None, &a.extensions, &a.user_information);
        }),
    }
}

fn opt_bits(out: &mut Vec<u8>, tag: Tag, b: &Option<BitString<'_>>) {
    if let Some(b) = b {
        write_bits(out, tag, b);
    }
}

fn opt_raw_explicit(out: &mut Vec<u8>, tag: Tag, raw: &Option<Octets<'_>>) {
    if let Some(raw) = raw {
        write_tlv(out, tag, |o| o.extend_from_slice(raw));
    }
}

fn emit_ae(out: &mut Vec<u8>, base: u32, ae: &AeTitle<'_>) {
    match &ae.ap_title {
        Some(ApTitle::Oid(oid)) => write_tlv(out, Tag::ctx_c(base), |o| write_oid(o, ber::OID, oid)),
        Some(ApTitle::Raw(raw)) => write_tlv(out, Tag::ctx_c(base), |o| o.extend_from_slice(raw)),
        None => {}
    }
    match &ae.ae_qualifier {
        Some(AeQualifier::Int(v)) => write_tlv(out, Tag::ctx_c(base + 1), |o| write_int(o, ber::INTEGER, *v)),
        Some(AeQualifier::Raw(raw)) => write_tlv(out, Tag::ctx_c(base + 1), |o| o.extend_from_slice(raw)),
        None => {}
    }
    if let Some(v) = ae.ap_invocation_id {
        write_tlv(out, Tag::ctx_c(base + 2), |o| write_int(o, ber::INTEGER, v));
    }
    if let Some(v) = ae.ae_invocation_id {
        write_tlv(out, Tag::ctx_c(base + 3), |o| write_int(o, ber::INTEGER, v));
    }
}

/// implementation-information, extension members (raw, as received), user-information.
fn emit_tail(out: &mut Vec<u8>, impl_info: &Option<Octets<'_>>, ext: &[Octets<'_>], ui: &Option<UserInformation<'_>>) {
    if let Some(i) = impl_info {
        write_prim(out, Tag::ctx(29), i);
    }
    for e in ext {
        out.extend_from_slice(e);
    }
    if let Some(ui) = ui {
        write_tlv(out, T_USER_INFO, |o| {
            for e in ui {
                emit_external(e, o);
            }
        });
    }
}

/// Append an EXTERNAL.
pub fn emit_external(e: &External<'_>, out: &mut Vec<u8>) {
    write_tlv(out, ber::EXTERNAL, |o| {
        if let Some(d) = &e.direct_reference {
            write_oid(o, ber::OID, d);
        }
        if let Some(i) = e.indirect_reference {
            write_int(o, ber::INTEGER, i);
        }
        if let Some(d) = &e.data_value_descriptor {
            write_prim(o, ber::OBJECT_DESCRIPTOR, d);
        }
        emit_pdv_value(o, &e.encoding);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    #[test]
    fn abrt_of_example_7() {
        let b = hex::decode("6411800100be0c280a020103a005b603800106").unwrap();
        let (a, rest) = parse(&b).unwrap();
        assert!(rest.is_empty());
        let AcseApdu::Abrt(ab) = &a else { panic!("{a:?}") };
        assert_eq!(ab.abort_source, ABORT_SOURCE_USER);
        let ext = &a.user_information()[0];
        assert_eq!(ext.indirect_reference, Some(3));
        assert_eq!(ext.encoding, PdvValue::Single(&[0xb6, 0x03, 0x80, 0x01, 0x06]));
        assert_eq!(ext.value_offset, 14);
        let mut out = Vec::new();
        emit(&a, &mut out);
        assert_eq!(out, b);
    }

    /// `parse_into` fills its slot as `parse` returns, and leaves it
    /// `None` on an error (even one found after the AARQ/AARE was begun).
    #[test]
    fn parse_into_matches_parse() {
        let aarq = Aarq {
            user_information: Some(vec![External::single(3, &[0x05, 0x00])].into()),
            ..Aarq::new(crate::presentation::ID_AC_MTS_TRANSFER)
        };
        let aare = Aare::new(crate::presentation::ID_AC_MTS_TRANSFER, 0, SourceDiagnostic::User(0));
        for apdu in [AcseApdu::Aarq(aarq), AcseApdu::Aare(aare), AcseApdu::Rlrq(Rlrq::default())] {
            let mut b = Vec::new();
            emit(&apdu, &mut b);
            b.push(0x42);
            let mut slot = None;
            assert_eq!(parse_into(&b, &mut slot).unwrap(), &[0x42]);
            assert_eq!(slot.as_ref(), Some(&apdu));
            assert_eq!(parse(&b).unwrap(), (apdu, &[0x42][..]));
            // Cut inside the last member: begun, then failed.
            let cut = &b[..b.len() - 2];
            let mut slot = None;
            assert_eq!(parse_into(cut, &mut slot).unwrap_err(), parse(cut).unwrap_err());
            assert!(slot.is_none());
        }
        let b = hex::decode("6000").unwrap();
        let mut slot = None;
        assert!(parse_into(&b, &mut slot).is_err());
        assert!(slot.is_none());
    }

    #[test]
    fn missing_mandatory_members() {
        let e = parse(&hex::decode("6000").unwrap()).unwrap_err();
        assert_eq!(e.offset, 0);
        let e = parse(&hex::decode("6403810101").unwrap()).unwrap_err();
        assert_eq!(e.expected, "abort-source [0] in ABRT");
    }
}
