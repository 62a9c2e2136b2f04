//! Presentation + ACSE on the worked examples (examples.md 2, 3, 4, 5, 6, 7):
//! decoded values, byte-exact re-emission, other BER encodings of the same
//! values (reordered SETs, indefinite and long-form lengths, constructed
//! strings), and robustness (every truncation, every single-byte change).

#[path = "support/ber_variants.rs"]
mod ber_variants;

use ber_variants::{canonical, variants, Rules};
use rtse_codec::acse::{self, AcseApdu, ExternalEncoding, SourceDiagnostic};
use rtse_codec::ber::{BitString, Octets};
use rtse_codec::hex;
use rtse_codec::presentation::{
    self as pres, Aru, ContextMap, Cpr, Mode, PdvValue, Ppdu, PpduSlot, UserData, BER, ID_AC_MTS_TRANSFER, ID_AS_ACSE,
    ID_AS_MTA_RTSE, ID_AS_MTSE,
};

// ---------------------------------------------------------------------------
// Cutting the presentation bytes out of examples_bytes.json.

fn examples() -> serde_json::Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/examples/examples_bytes.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("examples_bytes.json")).unwrap()
}

fn frame(ex: &str, name: &str) -> Vec<u8> {
    hex::decode(examples()[ex][name].as_str().unwrap()).unwrap()
}

/// The value of the session PGI User Data (`c1 LL`) of an SPDU: the first
/// `c1 LL` whose length reaches exactly the end of the frame.
fn session_user_data(b: &[u8]) -> Vec<u8> {
    for i in 0..b.len().saturating_sub(1) {
        if b[i] == 0xc1 && i + 2 + b[i + 1] as usize == b.len() {
            return b[i + 2..].to_vec();
        }
    }
    panic!("no PGI User Data reaching the end of {}", hex::encode(b));
}

/// CN/AC/PT/AB user data of example `ex`, frame `name`.
fn ud(ex: &str, name: &str) -> Vec<u8> {
    session_user_data(&frame(ex, name))
}

/// DT user information: after TPKT+COTP (7), GT (2), DT (2).
fn dt_user_info(ex: &str, name: &str) -> Vec<u8> {
    frame(ex, name)[11..].to_vec()
}

/// Every presentation example: (label, slot, bytes).
fn all_pres() -> Vec<(&'static str, PpduSlot, Vec<u8>)> {
    let ex2cn = session_user_data(&hex::decode(examples()["ex2"]["CN_tsdu"].as_str().unwrap()).unwrap());
    let ex2ac = session_user_data(&hex::decode(examples()["ex2"]["AC_tsdu"].as_str().unwrap()).unwrap());
    vec![
        ("ex2 CP", PpduSlot::Connect, ex2cn),
        ("ex2 CPA", PpduSlot::Accept, ex2ac),
        ("ex3 DT1", PpduSlot::Data, dt_user_info("ex3", "DT1")),
        ("ex3 DT2", PpduSlot::Data, dt_user_info("ex3", "DT2")),
        ("ex4 PT", PpduSlot::Data, ud("ex4", "PT")),
        ("ex5 CP", PpduSlot::Connect, ud("ex5", "CN")),
        ("ex5 CPA", PpduSlot::Accept, ud("ex5", "AC")),
        ("ex6 CP (X.410)", PpduSlot::Connect, ud("ex6", "CN")),
        ("ex6 CPA (X.410)", PpduSlot::Accept, ud("ex6", "AC")),
        ("ex7 ARU", PpduSlot::Abort, ud("ex7", "AB")),
    ]
}

fn emit(p: &Ppdu<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    pres::emit(p, &mut out);
    out
}

fn emit_acse(a: &AcseApdu<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    acse::emit(a, &mut out);
    out
}

fn bits(unused: u8, data: &[u8]) -> BitString<'_> {
    BitString { unused, data: Octets::borrowed(data) }
}

/// Every PDV's offset points at its value in `input`.
fn check_offsets(p: &Ppdu<'_>, input: &[u8]) {
    for pdv in p.user_data().into_iter().flat_map(|u| u.pdvs()) {
        if let PdvValue::Single(raw) = pdv.value {
            assert_eq!(&input[pdv.value_offset..pdv.value_offset + raw.len()], raw);
        }
    }
}

fn the_acse<'a>(p: &'a Ppdu<'a>) -> (AcseApdu<'a>, usize) {
    let pdv = p.user_data().unwrap().single().unwrap();
    assert_eq!(pdv.pcid, 1, "ACSE travels in context 1 in our examples");
    let PdvValue::Single(raw) = pdv.value else { panic!() };
    let (a, rest) = acse::parse(raw).unwrap();
    assert!(rest.is_empty());
    assert_eq!(emit_acse(&a), raw, "ACSE re-emits byte for byte");
    (a, pdv.value_offset)
}

// ---------------------------------------------------------------------------
// Decoded values.

#[test]
fn example_2_cp_aarq() {
    let b = all_pres().remove(0).2;
    assert_eq!(&b[..3], &[0x31, 0x81, 0x91]);
    assert_eq!(pres::mode_of_connect(&b), Some(Mode::Normal));
    let (p, rest) = pres::parse_for(PpduSlot::Connect, &b).unwrap();
    assert!(rest.is_empty());
    assert_eq!(p.name(), "CP");
    let Ppdu::Cp(cp) = &p else { panic!("{p:?}") };
    assert_eq!(cp.mode, Mode::Normal);
    assert_eq!(cp.x410_mode_parameters, None);
    let n = cp.normal.as_ref().unwrap();
    assert_eq!(n.protocol_version, Some(bits(7, &[0x80])));
    assert!(n.version1());
    assert_eq!(n.calling_selector.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    assert_eq!(n.called_selector.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    let ctx: Vec<(i64, String, Vec<String>)> = cp
        .context_list()
        .iter()
        .map(|c| (c.pcid, c.abstract_syntax.to_string(), c.transfer_syntaxes.iter().map(|t| t.to_string()).collect()))
        .collect();
    let ber = vec!["2.1.1".to_string()];
    assert_eq!(
        ctx,
        vec![
            (1, "2.2.1.0.1".into(), ber.clone()),
            (3, "2.6.0.2.12".into(), ber.clone()),
            (5, "2.6.0.2.7".into(), ber.clone())
        ]
    );
    assert_eq!(cp.context_list()[1].abstract_syntax, ID_AS_MTA_RTSE);
    assert_eq!(n.default_context_name, None);
    assert_eq!(n.protocol_options, None);
    check_offsets(&p, &b);
    assert_eq!(emit(&p), b);

    let (aarq, off) = the_acse(&p);
    assert_eq!(&b[off..off + 2], &[0x60, 0x39]);
    assert_eq!(aarq.name(), "AARQ");
    let AcseApdu::Aarq(a) = &aarq else { panic!() };
    assert_eq!(a.protocol_version, Some(bits(7, &[0x80])));
    assert_eq!(a.application_context_name, ID_AC_MTS_TRANSFER);
    assert_eq!(a.application_context_name.to_string(), "2.6.0.1.6");
    assert!(a.called.is_empty() && a.calling.is_empty());
    let ext = &aarq.user_information()[0];
    assert_eq!(aarq.user_information().len(), 1);
    assert_eq!((ext.direct_reference.clone(), ext.indirect_reference), (None, Some(3)));
    let ExternalEncoding::Single(rtorq) = ext.encoding else { panic!() };
    assert_eq!(&rtorq[..2], &[0xb0, 0x22]);
    assert_eq!(rtorq.len(), 0x24);
    let PdvValue::Single(aarq_raw) = p.user_data().unwrap().first().unwrap().value else { panic!() };
    assert_eq!(&aarq_raw[ext.value_offset..ext.value_offset + rtorq.len()], rtorq);

    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["pdu"], "CP");
    assert_eq!(json["mode"], "normal");
    assert_eq!(json["calling_selector"], "00000001");
    assert_eq!(json["context_list"][1]["abstract_syntax"], "2.6.0.2.12");
    assert_eq!(json["user_data"]["pdvs"][0]["pcid"], 1);
    assert_eq!(json["user_data"]["pdvs"][0]["value"]["single"].as_str().unwrap().len(), 0x3b * 2);
    let json = serde_json::to_value(&aarq).unwrap();
    assert_eq!(json["pdu"], "AARQ");
    assert_eq!(json["application_context_name"], "2.6.0.1.6");
    assert_eq!(json["user_information"][0]["indirect_reference"], 3);
}

#[test]
fn example_2_cpa_aare_and_context_map() {
    let all = all_pres();
    let (cp_b, cpa_b) = (&all[0].2, &all[1].2);
    let (p, rest) = pres::parse_for(PpduSlot::Accept, cpa_b).unwrap();
    assert!(rest.is_empty());
    assert_eq!(p.name(), "CPA");
    let Ppdu::Cpa(cpa) = &p else { panic!("{p:?}") };
    assert_eq!(cpa.mode, Mode::Normal);
    let n = cpa.normal.as_ref().unwrap();
    assert_eq!(n.protocol_version, Some(bits(7, &[0x80])));
    assert_eq!(n.responding_selector.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    assert_eq!(cpa.result_list().len(), 3);
    for r in cpa.result_list() {
        assert!(r.accepted());
        assert_eq!((r.transfer_syntax.as_ref(), r.provider_reason), (Some(&BER), None));
    }
    check_offsets(&p, cpa_b);
    assert_eq!(emit(&p), *cpa_b);

    let (aare, _) = the_acse(&p);
    let AcseApdu::Aare(a) = &aare else { panic!("{aare:?}") };
    assert_eq!(a.application_context_name, ID_AC_MTS_TRANSFER);
    assert!(a.accepted());
    assert_eq!(a.result_source_diagnostic, SourceDiagnostic::User(0));
    let ext = &aare.user_information()[0];
    assert_eq!(ext.indirect_reference, Some(3));
    let ExternalEncoding::Single(rtoac) = ext.encoding else { panic!() };
    assert_eq!(&rtoac[..2], &[0xb1, 0x1f]);
    let json = serde_json::to_value(&aare).unwrap();
    assert_eq!(json["result_source_diagnostic"]["user"], 0);

    let (Ppdu::Cp(cp), _) = pres::parse_for(PpduSlot::Connect, cp_b).unwrap() else { panic!() };
    let map = ContextMap::negotiated(&cp, cpa);
    assert_eq!(map.len(), 3);
    assert_eq!(map.syntax_of(1), Some(&ID_AS_ACSE));
    assert_eq!(map.syntax_of(3), Some(&ID_AS_MTA_RTSE));
    assert_eq!(map.syntax_of(5), Some(&ID_AS_MTSE));
    assert_eq!(map.syntax_of(7), None);
    assert_eq!(map.pcid_of(&ID_AS_MTA_RTSE), Some(3));
    assert_eq!(map.entries()[0].transfer_syntax, Some(BER));
    // A rejected context drops out.
    let mut cpa2 = cpa.clone();
    cpa2.normal.as_mut().unwrap().result_list.as_mut().unwrap()[2].result = pres::RESULT_PROVIDER_REJECTION;
    let map = ContextMap::negotiated(&cp, &cpa2);
    assert_eq!((map.len(), map.syntax_of(5)), (2, None));
    assert_eq!(ContextMap::proposed(&cp).len(), 3);
}

#[test]
fn example_3_dt_user_data_and_transfer_external() {
    for (i, name) in ["DT1", "DT2"].into_iter().enumerate() {
        let b = dt_user_info("ex3", name);
        assert_eq!(&b[..11], &hex::decode("61653063020103a05e045c").unwrap()[..]);
        let (u, rest) = pres::parse_user_data(&b).unwrap();
        assert!(rest.is_empty());
        let pdv = u.single().unwrap();
        assert_eq!((pdv.pcid, pdv.transfer_syntax.clone(), pdv.value_offset), (3, None, 9));
        let PdvValue::Single(rttr) = pdv.value else { panic!() };
        assert_eq!((rttr.len(), rttr[0], rttr[1]), (94, 0x04, 0x5c));
        let mut out = Vec::new();
        pres::emit_user_data(&u, &mut out);
        assert_eq!(out, b, "{name}");
        let e = hex::decode(examples()["ex3"]["EXTERNAL"].as_str().unwrap()).unwrap();
        assert_eq!(&rttr[2..], &e[i * 92..(i + 1) * 92]);
    }
    // The concatenated RTTR octets: an EXTERNAL in context 5 (id-as-mtse).
    let e = hex::decode(examples()["ex3"]["EXTERNAL"].as_str().unwrap()).unwrap();
    assert_eq!(e.len(), 184);
    let (x, rest) = acse::parse_external(&e).unwrap();
    assert!(rest.is_empty());
    assert_eq!((x.indirect_reference, x.direct_reference.clone()), (Some(5), None));
    let ExternalEncoding::Single(mts) = x.encoding else { panic!() };
    assert_eq!((&mts[..3], x.value_offset), (&[0xa0, 0x81, 0xac][..], 9));
    let mut out = Vec::new();
    acse::emit_external(&x, &mut out);
    assert_eq!(out, e);
    let e = acse::parse_external_as(rtse_codec::Layer::Rtse, &e[..92]).unwrap_err();
    assert_eq!(e.layer, rtse_codec::Layer::Rtse);
}

#[test]
fn example_4_turn_please_user_data() {
    let b = ud("ex4", "PT");
    assert_eq!(b, hex::decode("610a3008020103a003020100").unwrap());
    let (p, rest) = pres::parse_for(PpduSlot::Data, &b).unwrap();
    assert!(rest.is_empty());
    assert_eq!(p.name(), "USER-DATA");
    let Ppdu::UserData(u) = &p else { panic!() };
    assert_eq!(u.pdvs().count(), 1);
    let pdv = u.first().unwrap();
    assert_eq!((pdv.pcid, &pdv.value), (3, &PdvValue::Single(&[2, 1, 0])));
    assert_eq!(emit(&p), b);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(json, r#"{"pdu":"USER-DATA","pdvs":[{"pcid":3,"value":{"single":"020100"}}]}"#);
}

#[test]
fn example_5_recovery_cp_aarq_cpa_aare() {
    let all = all_pres();
    let (cp_b, cpa_b) = (&all[5].2, &all[6].2);
    let (p, _) = pres::parse_for(PpduSlot::Connect, cp_b).unwrap();
    let Ppdu::Cp(cp) = &p else { panic!() };
    assert_eq!(cp.context_list().len(), 3);
    assert_eq!(emit(&p), *cp_b);
    check_offsets(&p, cp_b);
    let (aarq, _) = the_acse(&p);
    let ExternalEncoding::Single(rtorq) = aarq.user_information()[0].encoding else { panic!() };
    assert_eq!(&rtorq[..2], &[0xb0, 0x28]);
    // connectionDataRQ recover [1] with the lost connection's reference.
    assert!(rtorq.windows(10).any(|w| w == b"MTA-A/0001"));

    let (p, _) = pres::parse_for(PpduSlot::Accept, cpa_b).unwrap();
    assert_eq!(emit(&p), *cpa_b);
    let (aare, _) = the_acse(&p);
    let AcseApdu::Aare(a) = &aare else { panic!() };
    assert!(a.accepted());
    let ExternalEncoding::Single(rtoac) = aare.user_information()[0].encoding else { panic!() };
    assert_eq!(&rtoac[..2], &[0xb1, 0x25]);
}

#[test]
fn example_6_x410_mode_connect_and_accept() {
    let all = all_pres();
    let (cn, ac) = (&all[7].2, &all[8].2);
    assert_eq!(pres::mode_of_connect(cn), Some(Mode::X410));
    let (p, _) = pres::parse_for(PpduSlot::Connect, cn).unwrap();
    let Ppdu::Cp(cp) = &p else { panic!() };
    assert_eq!((cp.mode, cp.normal.as_ref(), cp.x410_offset), (Mode::X410, None, 7));
    let raw = cp.x410_mode_parameters.unwrap();
    assert_eq!((&raw[..2], raw.len()), (&[0xa1, 0x23][..], 0x25));
    assert_eq!(&cn[cp.x410_offset..], raw);
    assert_eq!(emit(&p), *cn);
    assert_eq!(serde_json::to_value(&p).unwrap()["mode"], "x410");
    let (p, _) = pres::parse_for(PpduSlot::Accept, ac).unwrap();
    let Ppdu::Cpa(cpa) = &p else { panic!() };
    assert_eq!((cpa.mode, &cpa.x410_mode_parameters.unwrap()[..2]), (Mode::X410, &[0xa1, 0x1d][..]));
    assert_eq!(emit(&p), *ac);
    // In X.410 mode the RF / AB user data is the bare RTS SET.
    let (p, _) = pres::parse_for(PpduSlot::Refuse, &[0x31, 0x03, 0x80, 0x01, 0x00]).unwrap();
    assert_eq!(p, Ppdu::Cpr(Box::new(Cpr::X410 { raw: &[0x31, 0x03, 0x80, 0x01, 0x00] })));
    let (p, _) = pres::parse_for(PpduSlot::Abort, &[0x31, 0x03, 0x80, 0x01, 0x06]).unwrap();
    assert_eq!(p, Ppdu::Aru(Box::new(Aru::X410 { raw: &[0x31, 0x03, 0x80, 0x01, 0x06] })));
    assert_eq!(serde_json::to_value(&p).unwrap()["mode"], "x410");
}

#[test]
fn example_7_aru_abrt() {
    let b = ud("ex7", "AB");
    assert_eq!(&b[..2], &[0xa0, 0x1c]);
    let (p, rest) = pres::parse_for(PpduSlot::Abort, &b).unwrap();
    assert!(rest.is_empty());
    assert_eq!(p.name(), "ARU");
    let Ppdu::Aru(a) = &p else { panic!("{p:?}") };
    let Aru::Normal(n) = &**a else { panic!("{p:?}") };
    assert_eq!(n.context_ids, None);
    assert_eq!(emit(&p), b);
    let (abrt, _) = the_acse(&p);
    let AcseApdu::Abrt(a) = &abrt else { panic!() };
    assert_eq!((a.abort_source, a.abort_diagnostic), (acse::ABORT_SOURCE_USER, None));
    let ext = &abrt.user_information()[0];
    assert_eq!(ext.indirect_reference, Some(3));
    assert_eq!(ext.encoding, ExternalEncoding::Single(&[0xb6, 0x03, 0x80, 0x01, 0x06]));
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!((json["pdu"].as_str(), json["mode"].as_str()), (Some("ARU"), Some("normal")));
}

// ---------------------------------------------------------------------------
// Other encodings of the same values.

/// Presentation rules: PDV values and the X.410 parameters belong to other
/// layers; selectors are implicitly tagged OCTET STRINGs.
fn pres_rules() -> Rules<'static> {
    Rules {
        opaque: &|path, n| path.ends_with(&[0x61, 0x30, 0xa0]) || (path == [0x31] && n.id0() == 0xa1),
        string: &|path, n| path.ends_with(&[0x31, 0xa2]) && matches!(n.id0(), 0x81..=0x83),
    }
}

/// ACSE rules: EXTERNAL values belong to RTSE.
fn acse_rules() -> Rules<'static> {
    Rules { opaque: &|path, _| path.ends_with(&[0x28, 0xa0]), string: &|_, _| false }
}

#[test]
fn variants_of_the_presentation_examples_decode_to_the_same_values() {
    for (label, slot, b) in all_pres() {
        let (want, _) = pres::parse_for(slot, &b).unwrap();
        let vs = variants(&b, &pres_rules());
        assert!(vs.iter().filter(|(_, v)| *v != b).count() >= 4, "{label}: too few rewrites apply");
        if label.contains("CP") && !label.contains("X.410") {
            assert!(vs.iter().all(|(_, v)| *v != b), "{label}: every rewrite applies");
        }
        for (name, v) in vs {
            let (got, rest) = pres::parse_for(slot, &v).unwrap_or_else(|e| panic!("{label} {name}: {e}"));
            assert!(rest.is_empty(), "{label} {name}");
            assert_eq!(got, want, "{label} {name}");
            check_offsets(&got, &v);
            assert_eq!(emit(&got), b, "{label} {name}: canonical re-emission");
        }
    }
}

#[test]
fn variants_of_the_acse_examples_decode_to_the_same_values() {
    for (label, slot, b) in all_pres() {
        let (p, _) = pres::parse_for(slot, &b).unwrap();
        let Some(PdvValue::Single(raw)) = p.user_data().and_then(|u| u.first()).map(|p| &p.value) else {
            continue;
        };
        if p.user_data().unwrap().first().unwrap().pcid != 1 {
            continue;
        }
        let (want, _) = acse::parse(raw).unwrap();
        for (name, v) in variants(raw, &acse_rules()) {
            let (got, rest) = acse::parse(&v).unwrap_or_else(|e| panic!("{label} {name}: {e}"));
            assert!(rest.is_empty());
            assert_eq!(got, want, "{label} {name}");
            for x in got.user_information() {
                let ExternalEncoding::Single(r) = x.encoding else { panic!() };
                assert_eq!(&v[x.value_offset..x.value_offset + r.len()], r);
            }
            assert_eq!(emit_acse(&got), *raw, "{label} {name}");
        }
    }
}

#[test]
fn whole_depth_variants_agree_up_to_canonical_form() {
    // Rewriting every layer at once (RTSE and P1 inside too): the decoded
    // layers, re-emitted, have the canonical form of the original.
    for (label, slot, b) in all_pres() {
        for (name, v) in variants(&b, &Rules::ALL) {
            let (got, _) = pres::parse_for(slot, &v).unwrap_or_else(|e| panic!("{label} {name}: {e}"));
            assert_eq!(canonical(&emit(&got)), canonical(&b), "{label} {name}");
            let Some(pdv) = got.user_data().and_then(|u| u.first()) else {
                continue;
            };
            let PdvValue::Single(raw) = pdv.value else {
                continue;
            };
            if pdv.pcid == 1 {
                let (a, _) = acse::parse(raw).unwrap_or_else(|e| panic!("{label} {name}: {e}"));
                assert_eq!(canonical(&emit_acse(&a)), canonical(raw), "{label} {name}");
            }
        }
    }
}

#[test]
fn constructed_simple_data_and_octet_aligned_pdvs() {
    // simply-encoded-data sent constructed and indefinite.
    let b = hex::decode("6080040161040262630000").unwrap();
    let (u, _) = pres::parse_user_data(&b).unwrap();
    assert_eq!(u, UserData::Simple(Octets::borrowed(b"abc")));
    let mut out = Vec::new();
    pres::emit_user_data(&u, &mut out);
    assert_eq!(out, hex::decode("4003616263").unwrap());
    // octet-aligned constructed (indefinite), arbitrary, transfer syntax present.
    let b = hex::decode("611a300f06025101020105a1800402616200003007020107820200ff").unwrap();
    let (u, _) = pres::parse_user_data(&b).unwrap();
    let v: Vec<_> = u.pdvs().collect();
    assert_eq!(v.len(), 2);
    assert_eq!(u.single(), None);
    assert_eq!((v[0].pcid, v[0].transfer_syntax.as_ref()), (5, Some(&BER)));
    assert_eq!(v[0].value, PdvValue::OctetAligned(Octets::borrowed(b"ab")));
    assert_eq!(v[0].value_offset, 13);
    assert_eq!(v[1].value, PdvValue::Arbitrary(bits(0, &[0xff])));
    assert_eq!(v[1].value_offset, 27);
    let mut out = Vec::new();
    pres::emit_user_data(&u, &mut out);
    assert_eq!(out, hex::decode("6116300b06025101020105810261623007020107820200ff").unwrap());
}

// ---------------------------------------------------------------------------
// Strictness where the ASN.1 has no room, leniency where it has.

#[test]
fn duplicate_and_misordered_members_are_errors_at_their_offsets() {
    use rtse_codec::Found;
    let b = all_pres().remove(0).2;
    // A second normal-mode-parameters: error at its offset.
    let mut n = ber_variants::parse_one(&b);
    let dup = n.kids()[1].clone();
    n.kids().push(dup);
    let v = n.encode(ber_variants::Style::CANONICAL);
    let e = pres::parse_cp(&v).unwrap_err();
    let dup_len = n.kids()[2].encode(ber_variants::Style::CANONICAL).len();
    assert_eq!((e.offset, e.found), (v.len() - dup_len, Found::Other("a duplicate member")), "{e}");
    assert_eq!(e.expected, "normal-mode-parameters [2]");
    // Called before calling selector: SEQUENCE order.
    let mut n = ber_variants::parse_one(&b);
    n.at(&[1]).kids().swap(1, 2);
    let v = n.encode(ber_variants::Style::CANONICAL);
    let e = pres::parse_cp(&v).unwrap_err();
    assert_eq!((e.offset, e.found), (3 + 5 + 3 + 4 + 6, Found::Other("a member out of SEQUENCE order")), "{e}");
    // An unknown member of normal-mode-parameters (X.226 has no extension marker there).
    let mut n = ber_variants::parse_one(&b);
    n.at(&[1]).kids().insert(3, ber_variants::Node::prim(0x83, &[1]));
    let v = n.encode(ber_variants::Style::CANONICAL);
    let e = pres::parse_cp(&v).unwrap_err();
    assert_eq!(e.offset, 3 + 5 + 3 + 4 + 6 + 6);
    assert!(matches!(e.found, Found::Tag(_)), "{e}");
    assert_eq!(e.to_string(), "presentation @ 0x1b: expected CP normal-mode-parameters member, found tag 0x83");
    // Mode-selector absent.
    let mut n = ber_variants::parse_one(&b);
    n.kids().remove(0);
    let e = pres::parse_cp(&n.encode(ber_variants::Style::CANONICAL)).unwrap_err();
    assert_eq!((e.offset, e.expected), (0, "mode-selector [0]"));
    // single-ASN1-type with two values.
    let e = pres::parse_user_data(&hex::decode("610d300b020103a006020100020100").unwrap()).unwrap_err();
    assert_eq!((e.offset, e.found), (12, Found::Trailing(3)));
}

#[test]
fn acse_keeps_extension_members_and_rejects_duplicates() {
    use rtse_codec::Found;
    let p = all_pres().remove(0).2;
    let (cp, _) = pres::parse_for(PpduSlot::Connect, &p).unwrap();
    let PdvValue::Single(aarq) = cp.user_data().unwrap().first().unwrap().value else { panic!() };
    // An unknown member with a high tag number [40] and a long-form length,
    // and the X.227bis addition called-asoi-tag [15], after the context name.
    let mut n = ber_variants::parse_one(aarq);
    let ext1 = vec![0x9f, 0x28, 0x81, 0x01, 0x00];
    let ext2 = vec![0xaf, 0x00];
    n.kids().insert(2, ber_variants::Node::verbatim(&ext1));
    n.kids().insert(3, ber_variants::Node::verbatim(&ext2));
    let v = n.encode(ber_variants::Style::CANONICAL);
    let (a, _) = acse::parse(&v).unwrap();
    let AcseApdu::Aarq(q) = &a else { panic!() };
    assert_eq!(q.extensions, vec![Octets::borrowed(&ext1), Octets::borrowed(&ext2)]);
    assert_eq!(emit_acse(&a), v, "extensions written back before user-information");
    // A duplicate application-context-name.
    let mut n = ber_variants::parse_one(aarq);
    let acn = n.kids()[1].clone();
    n.kids().insert(2, acn);
    let v = n.encode(ber_variants::Style::CANONICAL);
    let e = acse::parse(&v).unwrap_err();
    assert_eq!((e.offset, e.found), (2 + 4 + 8, Found::Other("a duplicate member")));
    // protocol-version absent: DEFAULT {version1}.
    let mut n = ber_variants::parse_one(aarq);
    n.kids().remove(0);
    let v = n.encode(ber_variants::Style::CANONICAL);
    let (a, _) = acse::parse(&v).unwrap();
    let AcseApdu::Aarq(q) = &a else { panic!() };
    assert_eq!((q.protocol_version.as_ref(), q.version1()), (None, true));
    assert_eq!(emit_acse(&a), v);
    // AP title form 2 and AE qualifier form 2 typed; form 1 kept raw.
    use ber_variants::Node as N;
    let b = N::cons(
        0x60,
        vec![
            N::cons(0xa1, vec![N::prim(0x06, &[0x56, 0, 1, 6])]),
            N::cons(0xa2, vec![N::prim(0x06, &[0x55, 4, 1])]),
            N::cons(0xa3, vec![N::prim(0x02, &[5])]),
            N::cons(0xa6, vec![N::cons(0x30, vec![N::cons(0x31, vec![N::cons(0x30, vec![])])])]),
            N::cons(0xa7, vec![N::cons(0x31, vec![N::cons(0x30, vec![N::prim(0x05, &[])])])]),
        ],
    )
    .encode(ber_variants::Style::CANONICAL);
    let (a, _) = acse::parse(&b).unwrap();
    let AcseApdu::Aarq(q) = &a else { panic!("{a:?}") };
    assert_eq!(q.called.ap_title, Some(acse::ApTitle::Oid(rtse_codec::ber::Oid::from_arcs(&[2, 5, 4, 1]))));
    assert_eq!(q.called.ae_qualifier, Some(acse::AeQualifier::Int(5)));
    assert_eq!(q.calling.ap_title, Some(acse::ApTitle::Raw(Octets::borrowed(&[0x30, 0x04, 0x31, 0x02, 0x30, 0x00]))));
    assert_eq!(
        q.calling.ae_qualifier,
        Some(acse::AeQualifier::Raw(Octets::borrowed(&[0x31, 0x04, 0x30, 0x02, 0x05, 0x00])))
    );
    assert_eq!(emit_acse(&a), b);
}

#[test]
fn abort_arp_cpr_normal_round_trip() {
    // ARP: provider-reason 2 (unexpected PPDU), event s-token-please-indication(17).
    let b = hex::decode("3006800102810111").unwrap();
    let (p, _) = pres::parse_for(PpduSlot::Abort, &b).unwrap();
    assert_eq!(p, Ppdu::Arp(pres::Arp { provider_reason: Some(2), event_identifier: Some(17) }));
    assert_eq!((p.name(), emit(&p)), ("ARP", b));
    // CPR normal: version, result list (one provider rejection), provider-reason 1.
    let b = hex::decode("301180020780a50830068001028201018a0101").unwrap();
    let (p, _) = pres::parse_for(PpduSlot::Refuse, &b).unwrap();
    let Ppdu::Cpr(c) = &p else { panic!("{p:?}") };
    let Cpr::Normal(n) = &**c else { panic!("{p:?}") };
    assert_eq!(n.provider_reason, Some(1));
    let r = &n.result_list.as_ref().unwrap()[0];
    assert_eq!((r.result, r.provider_reason, r.accepted()), (2, Some(1), false));
    assert_eq!(emit(&p), b);
    assert_eq!(serde_json::to_value(&p).unwrap()["mode"], "normal");
}

// ---------------------------------------------------------------------------
// Robustness: every truncation and every single-byte change of every example
// is an error (offset within the input) or a PDU that round-trips.

fn check_pres(slot: PpduSlot, b: &[u8]) {
    match pres::parse_for(slot, b) {
        Err(e) => assert!(e.offset <= b.len(), "{e} (len {})", b.len()),
        Ok((p, rest)) => {
            assert!(rest.len() <= b.len());
            let out = emit(&p);
            let (again, r2) =
                pres::parse_for(slot, &out).unwrap_or_else(|e| panic!("re-parse {e}: {}", hex::encode(&out)));
            assert!(r2.is_empty());
            assert_eq!(again, p);
            for pdv in p.user_data().into_iter().flat_map(|u| u.pdvs()) {
                if let PdvValue::Single(raw) = pdv.value {
                    assert_eq!(&b[pdv.value_offset..pdv.value_offset + raw.len()], raw);
                    check_acse(raw);
                }
            }
        }
    }
}

fn check_acse(b: &[u8]) {
    match acse::parse(b) {
        Err(e) => assert!(e.offset <= b.len(), "{e} (len {})", b.len()),
        Ok((a, _)) => {
            let out = emit_acse(&a);
            let (again, _) = acse::parse(&out).unwrap_or_else(|e| panic!("re-parse {e}: {}", hex::encode(&out)));
            assert_eq!(again, a);
            for x in a.user_information() {
                if let ExternalEncoding::Single(raw) = x.encoding {
                    assert_eq!(&b[x.value_offset..x.value_offset + raw.len()], raw);
                }
            }
        }
    }
}

fn mutate_all(slot: PpduSlot, b: &[u8]) {
    for n in 0..b.len() {
        check_pres(slot, &b[..n]);
    }
    let mut v = b.to_vec();
    for i in 0..b.len() {
        for x in 0..=255u8 {
            if x == b[i] {
                continue;
            }
            v[i] = x;
            check_pres(slot, &v);
        }
        v[i] = b[i];
    }
}

#[test]
fn robust_ex2_cp() {
    let (_, slot, b) = all_pres().remove(0);
    mutate_all(slot, &b);
}

#[test]
fn robust_ex2_cpa() {
    let (_, slot, b) = all_pres().remove(1);
    mutate_all(slot, &b);
}

#[test]
fn robust_ex3_ex4_data() {
    for (_, slot, b) in all_pres().drain(2..5) {
        mutate_all(slot, &b);
    }
}

#[test]
fn robust_ex5_cp() {
    let (_, slot, b) = all_pres().remove(5);
    mutate_all(slot, &b);
}

#[test]
fn robust_ex5_cpa() {
    let (_, slot, b) = all_pres().remove(6);
    mutate_all(slot, &b);
}

#[test]
fn robust_ex6_ex7() {
    for (_, slot, b) in all_pres().drain(7..) {
        mutate_all(slot, &b);
    }
    // The same bytes read in the wrong slot never panic either.
    for (_, _, b) in all_pres() {
        for slot in [PpduSlot::Connect, PpduSlot::Accept, PpduSlot::Refuse, PpduSlot::Abort, PpduSlot::Data] {
            check_pres(slot, &b);
        }
    }
}

#[test]
fn robust_external_of_ex3() {
    let b = hex::decode(examples()["ex3"]["EXTERNAL"].as_str().unwrap()).unwrap();
    let check = |b: &[u8]| match acse::parse_external(b) {
        Err(e) => assert!(e.offset <= b.len()),
        Ok((x, _)) => {
            let mut out = Vec::new();
            acse::emit_external(&x, &mut out);
            assert_eq!(acse::parse_external(&out).unwrap().0, x);
        }
    };
    for n in 0..b.len() {
        check(&b[..n]);
    }
    let mut v = b.clone();
    for i in 0..b.len() {
        for x in [0u8, 0x80, 0xff, b[i] ^ 0x20, b[i].wrapping_add(1), b[i].wrapping_sub(1)] {
            v[i] = x;
            check(&v);
        }
        v[i] = b[i];
    }
}
