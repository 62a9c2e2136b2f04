//! What real peers send: SET members in any order, indefinite and long-form
//! lengths, constructed strings, explicitly encoded defaults. All decode to
//! the value of the canonical form; malformed SETs fail at the right offset.

mod rtse_support;

use rtse_codec::ber::{BitString, Octets, Tag};
use rtse_codec::p1;
use rtse_codec::rtse::{self, AbortReason, ConnectionData, DialogueMode, Rtab, Rtorq, RtseApdu};
use rtse_codec::x410::{self, Slot};
use rtse_codec::{Found, Layer};
use rtse_support::{example, h, reversed_members, rewrite, tlv_after, Variant};

const VARIANTS: [Variant; 3] = [Variant::Indefinite, Variant::LongLengths, Variant::ChoppedStrings];

fn rtse_examples() -> Vec<(&'static str, Vec<u8>, usize)> {
    vec![
        ("ex2 RTORQ", tlv_after(&example("ex2", "CN_tsdu"), "2829020103a024", 7), 3),
        ("ex2 RTOAC", tlv_after(&example("ex2", "AC_tsdu"), "2826020103a021", 7), 3),
        ("ex3 RTTR", tlv_after(&example("ex3", "DT1"), "3063020103a05e", 7), 1),
        ("ex4 RTTP", tlv_after(&example("ex4", "PT"), "3008020103a003", 7), 1),
        ("ex5 RTORQ", tlv_after(&example("ex5", "CN"), "282f020103a02a", 7), 4),
        ("ex5 RTOAC", tlv_after(&example("ex5", "AC"), "282c020103a027", 7), 4),
        ("ex7 RTAB", tlv_after(&example("ex7", "AB"), "280a020103a005", 7), 2),
    ]
}

#[test]
fn rtse_examples_in_other_encodings_decode_to_the_same_value() {
    for (name, b, depth) in rtse_examples() {
        let want = rtse::parse_exact(&b).unwrap();
        for v in VARIANTS {
            let alt = rewrite(&b, v, depth, &[]);
            let got = rtse::parse_exact(&alt)
                .unwrap_or_else(|e| panic!("{name} {v:?}: {e}\n{}", rtse_codec::hex::encode(&alt)));
            assert_eq!(got, want, "{name} {v:?}");
        }
        if b[0] & 0x20 != 0 && b[0] != 0x24 {
            let alt = reversed_members(&b);
            assert_eq!(rtse::parse_exact(&alt).unwrap(), want, "{name} reversed");
            // And both at once.
            let alt = rewrite(&alt, Variant::Indefinite, depth, &[]);
            assert_eq!(rtse::parse_exact(&alt).unwrap(), want, "{name} reversed + indefinite");
        }
    }
}

#[test]
fn x410_examples_in_other_encodings() {
    let cn = tlv_after(&example("ex6", "CN"), "c12c", 2);
    let ac = tlv_after(&example("ex6", "AC"), "c126", 2);
    for (slot, b) in [(Slot::Connect, cn), (Slot::Accept, ac)] {
        let (want, _) = x410::parse(slot, &b).unwrap();
        let mut alts: Vec<Vec<u8>> = VARIANTS.iter().map(|v| rewrite(&b, *v, 4, &[])).collect();
        // Outer SET reversed, and the pUserData SET reversed inside it.
        let outer = reversed_members(&b);
        alts.push(outer.clone());
        let (_, _) = x410::parse(slot, &outer).unwrap();
        let ud_at = outer.iter().position(|&x| x == 0xa1).unwrap();
        let ud = tlv_after(&outer[ud_at..], "a1", 0);
        let mut both = outer[..ud_at].to_vec();
        both.extend(reversed_members(&ud));
        both.extend_from_slice(&outer[ud_at + ud.len()..]);
        alts.push(both);
        for alt in alts {
            let (got, rest) = x410::parse(slot, &alt).unwrap_or_else(|e| panic!("{slot:?}: {e}"));
            assert!(rest.is_empty());
            assert_eq!(got, want, "{}", rtse_codec::hex::encode(&alt));
        }
    }
}

#[test]
fn mts_apdu_in_other_encodings() {
    let ext = example("ex3", "EXTERNAL");
    let mts = &ext[9..];
    let (want, _) = p1::parse_mts_apdu(mts).unwrap();
    for v in VARIANTS {
        let alt = rewrite(mts, v, 32, &[0x80, 0x83]);
        let (got, rest) = p1::parse_mts_apdu(&alt).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert!(rest.is_empty());
        assert_eq!(
            (got.kind, &got.mts_identifier, &got.content_type),
            (want.kind, &want.mts_identifier, &want.content_type)
        );
        assert_eq!(got.raw, &alt[..]);
    }
    // Envelope members reversed (the 64 identifier comes last).
    let env = tlv_after(mts, "3181a2", 0);
    let mut alt = vec![0xa0, 0x81, 0xac];
    alt.extend(reversed_members(&env));
    alt.extend_from_slice(&mts[3 + env.len()..]);
    let (got, _) = p1::parse_mts_apdu(&alt).unwrap();
    assert_eq!(got.mts_identifier.to_string(), "/C=GB/A= /P=ACME/;MSG-0001");
}

#[test]
fn rttr_sent_constructed() {
    // `24 80 ...`: segments joined; an owned value equal to the primitive one.
    let prim_b = h("0403aabbcc");
    let prim = rtse::parse_exact(&prim_b).unwrap();
    // Definite, indefinite, and a constructed segment inside the constructed string.
    for b in ["24800402aabb0401cc0000", "24070402aabb0401cc", "248024800401aa0401bb00000401cc0000"] {
        let b = h(b);
        assert_eq!(rtse::parse_exact(&b).unwrap(), prim, "{}", rtse_codec::hex::encode(&b));
    }
    // A segment of another type is refused at its offset.
    let e = rtse::parse_exact(&h("24050201000401cc")).unwrap_err();
    assert_eq!((e.offset, e.found), (2, Found::Tag(rtse_codec::ber::INTEGER)));
}

#[test]
fn defaults_absent_and_explicit() {
    // Minimal RTORQ: only connectionDataRQ open with no user data (80 00).
    let b = h("b004a3028000");
    let apdu = rtse::parse_exact(&b).unwrap();
    let RtseApdu::Rtorq(r) = &apdu else { panic!() };
    assert_eq!(
        *r,
        Rtorq {
            checkpoint_size: None,
            window_size: None,
            dialogue_mode: None,
            connection_data: ConnectionData::Open(None),
            application_protocol: None
        }
    );
    assert_eq!((r.checkpoint_size(), r.window_size(), r.dialogue_mode()), (0, 3, DialogueMode::Monologue));
    assert_eq!(serde_json::to_string(&apdu).unwrap(), r#"{"pdu":"RTORQ","connection_data":{"open":null}}"#);
    let mut out = Vec::new();
    rtse::emit(&apdu, &mut out);
    assert_eq!(out, b);
    // Explicit defaults are kept and written again.
    let b = h("b00d800100810103820100a3028000");
    let apdu = rtse::parse_exact(&b).unwrap();
    let RtseApdu::Rtorq(r) = &apdu else { panic!() };
    assert_eq!((r.checkpoint_size, r.window_size, r.dialogue_mode), (Some(0), Some(3), Some(DialogueMode::Monologue)));
    let mut out = Vec::new();
    rtse::emit(&apdu, &mut out);
    assert_eq!(out, b);
    // X.410: applicationProtocol absent means p1(1).
    let b = h("310ba003800100a104a3028000");
    let (p, _) = x410::parse_connect(&b).unwrap();
    assert_eq!((p.user_data.application_protocol, p.application_protocol()), (None, 1));
}

#[test]
fn unknown_values_round_trip() {
    let b = h("b60c80010981020780a203020105");
    let apdu = rtse::parse_exact(&b).unwrap();
    assert_eq!(
        apdu,
        RtseApdu::Rtab(Rtab {
            abort_reason: Some(AbortReason::Other(9)),
            reflected_parameter: Some(BitString { unused: 7, data: Octets::borrowed(&[0x80]) }),
            user_data: Some(&b[11..]),
        })
    );
    assert_eq!(
        serde_json::to_string(&apdu).unwrap(),
        r#"{"pdu":"RTAB","abort_reason":9,"reflected_parameter":{"unused":7,"data":"80"},"user_data":"020105"}"#
    );
    let mut out = Vec::new();
    rtse::emit(&apdu, &mut out);
    assert_eq!(out, b);
    assert_eq!(AbortReason::Other(6), AbortReason::UserError);
    assert_eq!(DialogueMode::from_i64(7).to_string(), "7");
    assert_eq!(DialogueMode::Twa.to_string(), "twa(1)");
}

#[test]
fn long_form_tags() {
    // An unknown member with a high tag number: refused at its offset.
    let e = rtse::parse_exact(&h("b007a30280009f2000")).unwrap_err();
    assert_eq!((e.layer, e.offset, e.found), (Layer::Rtse, 6, Found::Tag(Tag::ctx(32))));
    assert_eq!(e.to_string(), "rtse @ 0x6: expected RTORQ member [0]..[4], each at most once, found tag [32]");
    // Low tag numbers in long form (non-minimal but valid BER).
    let b = h("bf1004a3028000");
    let got = rtse::parse_exact(&b);
    match got {
        Ok(a) => assert_eq!(a, rtse::parse_exact(&h("b004a3028000")).unwrap()),
        Err(e) => panic!("long-form [16]: {e}"),
    }
}

#[test]
fn malformed_sets_fail_where_the_fault_is() {
    let cases: &[(&str, usize, Found, &str)] = &[
        // Repeated checkpointSize: at the second one.
        ("b00a800101800102a3028000", 5, Found::Other("a repeated member"), "RTORQ member"),
        // No connectionDataRQ: at the SET.
        ("b003800101", 0, Found::Other("a SET without it"), "connectionDataRQ [3]"),
        // open [0] constructed but empty.
        ("b004a302a000", 6, Found::EndOfInput, "one user-data value in open [0]"),
        // Two choices inside [3].
        ("b006a30480008000", 6, Found::Trailing(2), "one ConnectionData"),
        // [0] IMPLICIT NULL with content.
        ("b005a303800100", 6, Found::Length(1), "open [0] IMPLICIT NULL"),
        // Unknown ConnectionData alternative.
        ("b004a3028200", 4, Found::Tag(Tag::ctx(2)), "ConnectionData open [0] or recover [1]"),
        // An integer member sent constructed.
        ("b009a103020103a3028000", 2, Found::Tag(Tag::ctx_c(1)), "windowSize"),
        // Not an RTSE APDU.
        ("3000", 0, Found::Tag(rtse_codec::ber::SEQUENCE), "RTSE APDU"),
        // recover without commonReference.
        ("b007a305a103040141", 9, Found::EndOfInput, "commonReference"),
        // Integer too long.
        ("02090100000000000000ff", 2, Found::Length(9), "RTTPapdu"),
    ];
    for (hex, off, found, what) in cases {
        let b = h(hex);
        let e = rtse::parse_exact(&b).unwrap_err();
        assert_eq!((e.offset, e.found), (*off, *found), "{hex}: {e}");
        assert!(e.expected.contains(what), "{hex}: {e}");
        assert_eq!(e.layer, Layer::Rtse);
    }
    let e = rtse::parse_exact(&h("020100ff")).unwrap_err();
    assert_eq!((e.offset, e.found), (3, Found::Trailing(1)));
    // X.410 errors carry the X.410 layer.
    let e = x410::parse_connect(&h("3108a1038001008000")).unwrap_err();
    assert_eq!(e.layer, Layer::X410);
    let e = x410::parse_refuse(&h("3100")).unwrap_err();
    assert_eq!((e.offset, e.found), (0, Found::Other("a SET without it")));
    let e = x410::parse_refuse(&h("3106800101800102")).unwrap_err();
    assert_eq!((e.offset, e.found), (5, Found::Other("a repeated member")));
}

#[test]
fn p1_bind_variants_and_errors() {
    // Members reversed, password as OCTET STRING, unauthenticated, extension kept.
    let b = h("a111a10804067365637265748005 4d54412d41");
    let bind = p1::parse_bind_argument(&b, false).unwrap();
    let p1::Bind::Authenticated(a) = &bind else { panic!() };
    assert_eq!(a.name.as_bytes(), b"MTA-A");
    let p1::Credentials::Simple(pw) = &a.credentials else { panic!() };
    assert_eq!(pw.form, p1::PasswordForm::OctetString);
    assert_eq!(p1::parse_bind_argument(&h("0500"), false).unwrap(), p1::Bind::Unauthenticated);
    assert_eq!(p1::parse_bind_result(&h("b1020500"), true).unwrap(), p1::Bind::Unauthenticated);
    assert_eq!(
        serde_json::to_string(&p1::P1Pdu::BindResult(p1::Bind::Unauthenticated)).unwrap(),
        r#"{"pdu":"MTABindResult","authenticated":false}"#
    );
    let with_ext = h("a110800141a10316014aa2003f6403010203");
    let bind = p1::parse_bind_argument(&with_ext, false).unwrap();
    let p1::Bind::Authenticated(a) = &bind else { panic!() };
    assert_eq!((a.security_context, a.extensions.len()), (Some(&with_ext[10..12]), 1));
    let mut out = Vec::new();
    p1::emit_bind_argument(&bind, false, &mut out);
    assert_eq!(out, with_ext);
    // Strong credentials are kept raw.
    let strong = h("a10c800141a107a0053103020101");
    let p1::Bind::Authenticated(a) = p1::parse_bind_argument(&strong, false).unwrap() else { panic!() };
    assert_eq!(a.credentials, p1::Credentials::Strong(&strong[7..]));
    // Errors.
    for (hex, off, found) in [
        ("05000000", 2, Found::Trailing(2)),
        ("a106800141800142", 5, Found::Other("a repeated member")),
        ("a103800141", 0, Found::Other("a SET without it")),
        ("a108800141a1030c0141", 7, Found::Tag(Tag::univ(12))),
        ("050100", 2, Found::Length(1)),
    ] {
        let e = p1::parse_bind_argument(&h(hex), false).unwrap_err();
        assert_eq!((e.layer, e.offset, e.found), (Layer::P1, off, found), "{hex}: {e}");
    }
}

#[test]
fn mts_apdu_errors() {
    let msg = p1::build_message(&p1::MtsIdentifier::new("GB", " ", None, "X"), b"");
    let (t, _) = p1::parse_mts_apdu(&msg).unwrap();
    assert_eq!(t.mts_identifier.to_string(), "/C=GB/A= /;X");
    for (hex, off, found) in [
        ("a3023100", 0, Found::Tag(Tag::ctx_c(3))),
        ("a0023100", 2, Found::Other("a SET without it")),
        ("a0023000", 2, Found::Tag(rtse_codec::ber::SEQUENCE)),
        // Two identifiers.
        (
            "a21e 640d 6308 61021300 62021300 160141 640d 6308 61021300 62021300 160141",
            17,
            Found::Other("a repeated member"),
        ),
        // Country name without its string.
        ("a20f 640d 6308 61021600 62021300 160141", 8, Found::Tag(Tag::univ(22))),
        // Local identifier of the wrong type.
        ("a20f 640d 6308 61021300 62021300 130141", 14, Found::Tag(Tag::univ(19))),
    ] {
        let b = h(hex);
        let e = p1::parse_mts_apdu(&b).unwrap_err();
        assert_eq!((e.layer, e.offset, e.found), (Layer::P1, off, found), "{hex}: {e}");
    }
}
