//! Worked examples 2-7 (examples.md): the RTSE / X.410 / P1 parts decode to
//! the values stated there and in asn1tools_decodes.json, and re-emit byte
//! for byte.

mod rtse_support;

use pretty_assertions::assert_eq;
use rtse_codec::p1::{
    self, Bind, BindError, ContentType, Credentials, MtsIdentifier, P1Pdu, PasswordForm, TransferKind,
};
use rtse_codec::rtse::{
    self, AbortReason, ConnectionData, DialogueMode, RefuseReason, Rtab, Rtorj, RtseApdu, SsUserRef,
};
use rtse_codec::x410::{self, Slot, X410Pdu};
use rtse_codec::{Found, Layer};
use rtse_support::{asn1tools, example, h, tlv_after};

fn reemit(apdu: &RtseApdu<'_>, bytes: &[u8]) {
    let mut out = Vec::new();
    rtse::emit(apdu, &mut out);
    assert_eq!(rtse_codec::hex::encode(&out), rtse_codec::hex::encode(bytes));
    assert_eq!(rtse::encoded_len(apdu), bytes.len());
}

fn reemit_x410(pdu: &X410Pdu<'_>, bytes: &[u8]) {
    let mut out = Vec::new();
    x410::emit(pdu, &mut out);
    assert_eq!(rtse_codec::hex::encode(&out), rtse_codec::hex::encode(bytes));
    assert_eq!(x410::encoded_len(pdu), bytes.len());
}

fn authenticated<'a>(b: &'a Bind<'a>) -> &'a p1::AuthenticatedBind<'a> {
    match b {
        Bind::Authenticated(a) => a,
        Bind::Unauthenticated => panic!("unauthenticated"),
    }
}

fn check_bind(b: &Bind<'_>, name: &str) {
    let a = authenticated(b);
    assert_eq!(a.name.as_bytes(), name.as_bytes());
    let Credentials::Simple(pw) = &a.credentials else { panic!("{:?}", a.credentials) };
    assert_eq!(pw.form, PasswordForm::Ia5String);
    assert_eq!(pw.value().as_bytes(), b"secret");
    assert!(a.security_context.is_none() && a.extensions.is_empty());
}

#[test]
fn ex2_rtorq_normal_mode() {
    let cn = example("ex2", "CN_tsdu");
    let b = tlv_after(&cn, "2829020103a024", 7);
    assert_eq!(b, asn1tools("ex2", "RTORQapdu (tag [16])").0);
    let (apdu, rest) = rtse::parse(&b).unwrap();
    assert!(rest.is_empty());
    assert_eq!(apdu.name(), "RTORQ");
    let RtseApdu::Rtorq(r) = &apdu else { panic!("{apdu:?}") };
    assert_eq!((r.checkpoint_size, r.window_size, r.dialogue_mode), (Some(1), Some(3), Some(DialogueMode::Twa)));
    assert_eq!((r.checkpoint_size(), r.window_size(), r.dialogue_mode()), (1, 3, DialogueMode::Twa));
    assert_eq!(r.application_protocol, None);
    let open = r.connection_data.open().unwrap();
    assert_eq!(open, &h("b013a11180054d54412d41a1081606736563726574")[..]);
    // The open value's place in the input, for the stack decoder.
    assert_eq!(rtse::offset_in(&b, open), Some(15));
    assert_eq!(apdu.user_data(), Some(open));
    reemit(&apdu, &b);

    // P1 inside, RO-notation wrapped (asn1tools: authenticated, MTA-A, simple ia5String "secret").
    let bind = p1::parse_bind_argument(open, true).unwrap();
    check_bind(&bind, "MTA-A");
    assert_eq!(&open[2..], &asn1tools("ex2", "MTABindArgument in connectionDataRQ.open").0[..]);
    let mut out = Vec::new();
    p1::emit_bind_argument(&bind, true, &mut out);
    assert_eq!(out, open);
    // Unwrapped parse of the wrapped bytes fails at the wrapper, offset shifts.
    let e = p1::parse_bind_argument(open, false).unwrap_err();
    assert_eq!((e.layer, e.offset, e.found), (Layer::P1, 0, Found::Tag(rtse::TAG_RTORQ)));
    assert_eq!(e.shift(15).offset, 15);

    // JSON: names, effective fields as sent, no password.
    let j = serde_json::to_value(&apdu).unwrap();
    assert_eq!(j["pdu"], "RTORQ");
    assert_eq!(j["checkpoint_size"], 1);
    assert_eq!(j["dialogue_mode"], "twa");
    assert_eq!(j["connection_data"]["open"], "b013a11180054d54412d41a1081606736563726574");
    let j = serde_json::to_string(&P1Pdu::BindArgument(bind.clone())).unwrap();
    assert_eq!(
        j,
        r#"{"pdu":"MTABindArgument","authenticated":true,"name":"MTA-A","credentials":{"simple":{"form":"IA5String","password":"<6 octets>"}}}"#
    );
    assert!(!format!("{bind:?}").contains("secret"));
}

#[test]
fn ex2_rtoac_normal_mode() {
    let ac = example("ex2", "AC_tsdu");
    let b = tlv_after(&ac, "2826020103a021", 7);
    assert_eq!(b, asn1tools("ex2", "RTOACapdu (tag [17])").0);
    let apdu = rtse::parse_exact(&b).unwrap();
    let RtseApdu::Rtoac(r) = &apdu else { panic!("{apdu:?}") };
    assert_eq!((r.checkpoint_size, r.window_size), (Some(1), Some(3)));
    let open = r.connection_data.open().unwrap();
    check_bind(&p1::parse_bind_result(open, true).unwrap(), "MTA-B");
    // A bind result is not a bind argument: the [17] wrapper is refused for [16].
    assert!(p1::parse_bind_argument(open, true).is_err());
    reemit(&apdu, &b);
}

/// The EXTERNAL header that the ACSE module owns: `28 81 b5 02 01 05 a0 81 af`.
const EXTERNAL_HEADER: usize = 9;

#[test]
fn ex3_rttr_segments_and_the_message_label() {
    let mut joined = Vec::new();
    for dt in ["DT1", "DT2"] {
        let tpkt = example("ex3", dt);
        let b = tlv_after(&tpkt, "3063020103a05e", 7);
        let (apdu, rest) = rtse::parse(&b).unwrap();
        assert!(rest.is_empty());
        let RtseApdu::Rttr(seg) = &apdu else { panic!("{apdu:?}") };
        assert_eq!(seg.len(), 92);
        joined.extend_from_slice(seg);
        reemit(&apdu, &b);
        if dt == "DT1" {
            assert_eq!(b, asn1tools("ex3", "RTTRapdu #1").0);
            let j = serde_json::to_value(&apdu).unwrap();
            assert_eq!((j["pdu"].as_str(), j["len"].as_u64()), (Some("RTTR"), Some(92)));
        }
    }
    assert_eq!(joined, example("ex3", "EXTERNAL"));
    let mts = &joined[EXTERNAL_HEADER..];
    assert_eq!(mts, &asn1tools("ex3", "MTS-APDU (message)").0[..]);

    let (t, rest) = p1::parse_mts_apdu(mts).unwrap();
    assert!(rest.is_empty());
    assert_eq!(t.kind, TransferKind::Message);
    assert_eq!(t.mts_identifier.to_string(), "/C=GB/A= /P=ACME/;MSG-0001");
    assert_eq!(t.mts_identifier, MtsIdentifier::new("GB", " ", Some("ACME"), "MSG-0001"));
    assert_eq!(t.content_type, Some(ContentType::BuiltIn(22)));
    assert_eq!((t.priority, t.priority()), (None, p1::Priority::Normal));
    assert_eq!(t.label(), "message /C=GB/A= /P=ACME/;MSG-0001");
    assert_eq!(t.raw, mts);
    let pdu = P1Pdu::from_transfer(t.clone());
    assert_eq!(pdu.name(), "Message");
    assert_eq!(
        serde_json::to_string(&pdu).unwrap(),
        r#"{"pdu":"Message","kind":"message","id":"/C=GB/A= /P=ACME/;MSG-0001","content_type":{"built_in":22},"len":175}"#
    );
    let mut out = Vec::new();
    p1::emit(&pdu, false, &mut out);
    assert_eq!(out, mts);

    // The builder reproduces example 3's MTS-APDU exactly.
    let built = p1::build_message(&t.mts_identifier, b"hello");
    assert_eq!(rtse_codec::hex::encode(&built), rtse_codec::hex::encode(mts));
}

#[test]
fn ex4_rttp() {
    let pt = example("ex4", "PT");
    let b = tlv_after(&pt, "3008020103a003", 7);
    assert_eq!(b, asn1tools("ex4", "RTTPapdu").0);
    let apdu = rtse::parse_exact(&b).unwrap();
    assert_eq!(apdu, RtseApdu::Rttp(0));
    assert_eq!(serde_json::to_string(&apdu).unwrap(), r#"{"pdu":"RTTP","priority":0}"#);
    reemit(&apdu, &b);
}

#[test]
fn ex5_recovery_rtorq_and_rtoac() {
    let cn = example("ex5", "CN");
    let b = tlv_after(&cn, "282f020103a02a", 7);
    assert_eq!(b, asn1tools("ex5", "RTORQapdu with connectionDataRQ = recover").0);
    let apdu = rtse::parse_exact(&b).unwrap();
    let RtseApdu::Rtorq(r) = &apdu else { panic!("{apdu:?}") };
    assert_eq!((r.checkpoint_size(), r.window_size(), r.dialogue_mode()), (1, 3, DialogueMode::Twa));
    let ConnectionData::Recover(sci) = &r.connection_data else { panic!("{r:?}") };
    assert_eq!(sci.calling_ss_user_reference, SsUserRef::OctetString(rtse_codec::ber::Octets::borrowed(b"MTA-A/0001")));
    assert_eq!(sci.common_reference.as_bytes(), b"250101115500Z");
    assert_eq!(sci.additional_reference_information, None);
    assert_eq!(apdu.user_data(), None);
    reemit(&apdu, &b);
    let j = serde_json::to_value(&apdu).unwrap();
    assert_eq!(j["connection_data"]["recover"]["calling_ss_user_reference"]["octetString"], "4d54412d412f30303031");

    let ac = example("ex5", "AC");
    let b2 = tlv_after(&ac, "282c020103a027", 7);
    assert_eq!(b2, asn1tools("ex5", "RTOACapdu with connectionDataAC = recover").0);
    let apdu2 = rtse::parse_exact(&b2).unwrap();
    let RtseApdu::Rtoac(a) = &apdu2 else { panic!("{apdu2:?}") };
    assert_eq!(a.connection_data, r.connection_data, "RTOAC echoes the recover value");
    reemit(&apdu2, &b2);
}

#[test]
fn ex6_x410_connect_accept_priority() {
    let cn = example("ex6", "CN");
    let b = tlv_after(&cn, "c12c", 2);
    assert_eq!(b, asn1tools("ex6", "PConnect (X.410)").0);
    let (p, rest) = x410::parse_connect(&b).unwrap();
    assert!(rest.is_empty());
    assert_eq!(p.data_transfer_syntax, x410::X409);
    let u = &p.user_data;
    assert_eq!((u.checkpoint_size, u.window_size, u.dialogue_mode), (Some(0), Some(3), Some(DialogueMode::Twa)));
    assert_eq!((u.application_protocol, p.application_protocol()), (Some(1), 1));
    let open = u.connection_data.open().unwrap();
    assert_eq!(open, &h("a11180054d54412d41a1081606736563726574")[..]);
    check_bind(&p1::parse_bind_argument(open, false).unwrap(), "MTA-A");
    // Wrapped parse of an X.410 bind: error at the bind's tag.
    assert_eq!(p1::parse_bind_argument(open, true).unwrap_err().offset, 0);
    let pdu = X410Pdu::PConnect(p.clone());
    assert_eq!(pdu.name(), "PConnect");
    reemit_x410(&pdu, &b);
    let j = serde_json::to_value(&pdu).unwrap();
    assert_eq!(
        (j["pdu"].as_str(), j["data_transfer_syntax"].as_i64(), j["application_protocol"].as_i64()),
        (Some("PConnect"), Some(0), Some(1))
    );
    // The same octets in the AC slot are a PAccept with an unknown member [3].
    let e = x410::parse(Slot::Accept, &b).unwrap_err();
    assert_eq!((e.layer, e.found), (Layer::X410, Found::Tag(rtse_codec::ber::Tag::ctx(2))));

    let ac = example("ex6", "AC");
    let b = tlv_after(&ac, "c126", 2);
    assert_eq!(b, asn1tools("ex6", "PAccept (X.410)").0);
    let (pdu, _) = x410::parse(Slot::Accept, &b).unwrap();
    let X410Pdu::PAccept(a) = &pdu else { panic!("{pdu:?}") };
    assert_eq!((a.user_data.checkpoint_size, a.user_data.window_size), (Some(0), Some(3)));
    check_bind(&p1::parse_bind_result(a.user_data.connection_data.open().unwrap(), false).unwrap(), "MTA-B");
    reemit_x410(&pdu, &b);

    let pt = example("ex6", "PT");
    let b = tlv_after(&pt, "c103", 2);
    assert_eq!(b, asn1tools("ex6", "Priority (S-TOKEN-PLEASE user data)").0);
    let (pdu, _) = x410::parse(Slot::TokenPlease, &b).unwrap();
    assert_eq!(pdu, X410Pdu::Priority(0));
    assert_eq!(serde_json::to_string(&pdu).unwrap(), r#"{"pdu":"Priority","priority":0}"#);
    reemit_x410(&pdu, &b);
}

#[test]
fn ex7_rtab() {
    let ab = example("ex7", "AB");
    let b = tlv_after(&ab, "280a020103a005", 7);
    assert_eq!(b, asn1tools("ex7", "RTABapdu (tag [22])").0);
    let apdu = rtse::parse_exact(&b).unwrap();
    assert_eq!(apdu, RtseApdu::Rtab(Rtab { abort_reason: Some(AbortReason::UserError), ..Rtab::default() }));
    assert_eq!(serde_json::to_string(&apdu).unwrap(), r#"{"pdu":"RTAB","abort_reason":"userError"}"#);
    reemit(&apdu, &b);
}

#[test]
fn x410_refuse_and_abort_from_the_digest() {
    // x410.md: PRefuse `31 03 80 01 rr`, AbortInformation `31 03 80 01 04` = protocolError.
    let b = h("3103800102");
    let (pdu, _) = x410::parse(Slot::Refuse, &b).unwrap();
    assert_eq!(pdu, X410Pdu::PRefuse(x410::PRefuse { refuse_reason: RefuseReason::ValidationFailure }));
    reemit_x410(&pdu, &b);
    let b = h("3103800104");
    let (pdu, _) = x410::parse(Slot::Abort, &b).unwrap();
    let X410Pdu::AbortInformation(a) = &pdu else { panic!() };
    assert_eq!(a.abort_reason, Some(AbortReason::ProtocolError));
    assert_eq!(serde_json::to_string(&pdu).unwrap(), r#"{"pdu":"AbortInformation","abort_reason":"protocolError"}"#);
    reemit_x410(&pdu, &b);
    // AbortInformation has no [2] user data (that is normal mode only).
    let e = x410::parse_abort(&h("3106800101a20100")).unwrap_err();
    assert_eq!((e.offset, e.found), (5, Found::Tag(rtse_codec::ber::Tag::ctx_c(2))));
    // X.410 recover uses a T61String reference.
    let b = h("a1 1b 14 0a 4d54412d412f30303031 17 0d 3235303130313131353530305a".replace(' ', "").as_str());
    let mut r = rtse_codec::ber::Reader::new(Layer::X410, &b);
    let sci = rtse::parse_session_connection_identifier(&r.read("x").unwrap(), Layer::X410).unwrap();
    assert!(matches!(sci.calling_ss_user_reference, SsUserRef::T61String(_)));
}

#[test]
fn rtorj_with_bind_error() {
    // AARE-rejected user data in normal mode: RTORJ { userDataRJ [1] { [18] MTABindError busy } }.
    let b = h("b207a105b203020100");
    let apdu = rtse::parse_exact(&b).unwrap();
    let RtseApdu::Rtorj(Rtorj { refuse_reason: None, user_data: Some(ud) }) = &apdu else { panic!("{apdu:?}") };
    assert_eq!(p1::parse_bind_error(ud, true).unwrap(), BindError::Busy);
    assert_eq!(p1::parse_bind_error(&ud[2..], false).unwrap(), BindError::Busy);
    let mut out = Vec::new();
    p1::emit_bind_error(BindError::Busy, true, &mut out);
    assert_eq!(&out[..], *ud);
    assert_eq!(
        serde_json::to_string(&P1Pdu::BindError(BindError::Other(9))).unwrap(),
        r#"{"pdu":"MTABindError","error":9}"#
    );
    reemit(&apdu, &b);
}
