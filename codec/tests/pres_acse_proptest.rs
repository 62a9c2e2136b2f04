//! Property tests: every presentation PPDU and ACSE APDU we can construct
//! survives emit -> parse unchanged, our output is a fixpoint, and the other
//! BER encodings of that output (tests/support/ber_variants.rs) decode to
//! the same value.

#[path = "support/ber_variants.rs"]
mod ber_variants;

use ber_variants::{variants, Node, Rules, Style};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use rtse_codec::acse::{
    self, Aare, Aarq, Abrt, AcseApdu, AeQualifier, AeTitle, ApTitle, External, Rlre, Rlrq, SourceDiagnostic,
    UserInformation,
};
use rtse_codec::ber::{BitString, Octets, Oid};
use rtse_codec::presentation::{
    self as pres, Arp, Aru, AruNormal, ContextDef, ContextId, ContextResult, Cp, CpNormal, Cpa, CpaNormal, Cpr,
    CprNormal, DefaultContextName, Mode, Pdv, PdvList, PdvValue, Ppdu, PpduSlot, UserData,
};

/// Raw values borrowed by the PDUs live for the whole test run.
fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn oid() -> impl Strategy<Value = Oid<'static>> {
    (0u64..=2, 0u64..40, vec(any::<u64>().prop_map(|x| x >> (x % 64)), 0..5)).prop_map(|(a, b, rest)| {
        let mut arcs = vec![a, b];
        arcs.extend(rest);
        Oid::from_arcs(&arcs)
    })
}

fn octets() -> impl Strategy<Value = Octets<'static>> {
    vec(any::<u8>(), 0..12).prop_map(Octets::owned)
}

fn bits() -> impl Strategy<Value = BitString<'static>> {
    (vec(any::<u8>(), 0..5), 0u8..8)
        .prop_map(|(d, u)| BitString { unused: if d.is_empty() { 0 } else { u }, data: Octets::owned(d) })
}

fn style() -> impl Strategy<Value = Style> {
    (any::<bool>(), any::<bool>()).prop_map(|(indefinite, long_lengths)| Style { indefinite, long_lengths })
}

/// A BER tree (the content of another layer's value).
fn tree() -> impl Strategy<Value = Node> {
    let leaf = (prop::sample::select(vec![0x02u8, 0x04, 0x05, 0x80, 0x13, 0x06]), vec(any::<u8>(), 0..6))
        .prop_map(|(id, c)| Node::prim(id, &c));
    leaf.prop_recursive(3, 12, 3, |inner| {
        (prop::sample::select(vec![0x30u8, 0x31, 0xa0, 0xb0, 0x61]), vec(inner, 0..3))
            .prop_map(|(id, kids)| Node::cons(id, kids))
    })
}

/// A raw TLV, in any BER length style.
fn raw_tlv() -> impl Strategy<Value = &'static [u8]> {
    (tree(), style()).prop_map(|(t, s)| leak(t.encode(s)))
}

/// A constructed raw TLV with identifier `id`.
fn raw_with(id: u8) -> impl Strategy<Value = &'static [u8]> {
    (vec(tree(), 0..3), style()).prop_map(move |(kids, s)| leak(Node::cons(id, kids).encode(s)))
}

fn pdv_value() -> impl Strategy<Value = PdvValue<'static>> {
    prop_oneof![
        raw_tlv().prop_map(PdvValue::Single),
        octets().prop_map(PdvValue::OctetAligned),
        bits().prop_map(PdvValue::Arbitrary),
    ]
}

fn pdv() -> impl Strategy<Value = Pdv<'static>> {
    (of(oid()), any::<i64>(), pdv_value()).prop_map(|(transfer_syntax, pcid, value)| Pdv {
        transfer_syntax,
        pcid,
        value,
        value_offset: 0,
    })
}

fn user_data() -> impl Strategy<Value = UserData<'static>> {
    prop_oneof![
        1 => octets().prop_map(UserData::Simple),
        4 => vec(pdv(), 0..4).prop_map(|v| UserData::Full(v.into_iter().collect::<PdvList<'_>>())),
    ]
}

fn context_def() -> impl Strategy<Value = ContextDef<'static>> {
    (any::<i64>(), oid(), vec(oid(), 0..3)).prop_map(|(pcid, abstract_syntax, transfer_syntaxes)| ContextDef {
        pcid,
        abstract_syntax,
        transfer_syntaxes: transfer_syntaxes.into(),
    })
}

fn context_result() -> impl Strategy<Value = ContextResult<'static>> {
    (0i64..3, of(oid()), of(0i64..4)).prop_map(|(result, transfer_syntax, provider_reason)| ContextResult {
        result,
        transfer_syntax,
        provider_reason,
    })
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::X410), Just(Mode::Normal)]
}

fn cp_normal() -> impl Strategy<Value = CpNormal<'static>> {
    (
        (of(bits()), of(octets()), of(octets()), of(vec(context_def(), 0..6).prop_map(Into::into))),
        (of((oid(), oid()).prop_map(|(a, t)| DefaultContextName { abstract_syntax: a, transfer_syntax: t }))),
        (of(bits()), of(bits()), of(bits()), of(any::<i64>())),
        (of(raw_with(0x30).prop_map(Octets::borrowed)), of(user_data())),
    )
        .prop_map(|((pv, cg, cd, cl), dcn, (pr, usr, po, inc), (ext, ud))| CpNormal {
            protocol_version: pv,
            calling_selector: cg,
            called_selector: cd,
            context_list: cl,
            default_context_name: dcn,
            presentation_requirements: pr,
            user_session_requirements: usr,
            protocol_options: po,
            initiators_nominated_context: inc,
            extensions: ext,
            user_data: ud,
        })
}

fn cpa_normal() -> impl Strategy<Value = CpaNormal<'static>> {
    (
        (of(bits()), of(octets()), of(vec(context_result(), 0..6).prop_map(Into::into))),
        (of(bits()), of(bits()), of(bits()), of(any::<i64>()), of(user_data())),
    )
        .prop_map(|((pv, rs, rl), (pr, usr, po, rnc, ud))| CpaNormal {
            protocol_version: pv,
            responding_selector: rs,
            result_list: rl,
            presentation_requirements: pr,
            user_session_requirements: usr,
            protocol_options: po,
            responders_nominated_context: rnc,
            user_data: ud,
        })
}

fn ppdu() -> impl Strategy<Value = Ppdu<'static>> {
    prop_oneof![
        (mode(), of(raw_with(0xa1)), of(cp_normal())).prop_map(|(mode, x410_mode_parameters, normal)| {
            Ppdu::Cp(Box::new(Cp { mode, x410_mode_parameters, x410_offset: 0, normal }))
        }),
        (mode(), of(raw_with(0xa1)), of(cpa_normal())).prop_map(|(mode, x410_mode_parameters, normal)| {
            Ppdu::Cpa(Box::new(Cpa { mode, x410_mode_parameters, x410_offset: 0, normal }))
        }),
        raw_with(0x31).prop_map(|raw| Ppdu::Cpr(Box::new(Cpr::X410 { raw }))),
        (
            of(bits()),
            of(octets()),
            of(vec(context_result(), 0..6).prop_map(Into::into)),
            of(0i64..3),
            of(0i64..8),
            of(user_data())
        )
            .prop_map(|(pv, rs, rl, dcr, reason, ud)| Ppdu::Cpr(Box::new(Cpr::Normal(CprNormal {
                protocol_version: pv,
                responding_selector: rs,
                result_list: rl,
                default_context_result: dcr,
                provider_reason: reason,
                user_data: ud,
            })))),
        raw_with(0x31).prop_map(|raw| Ppdu::Aru(Box::new(Aru::X410 { raw }))),
        (
            of(vec(
                (any::<i64>(), oid()).prop_map(|(pcid, transfer_syntax)| ContextId { pcid, transfer_syntax }),
                0..3
            )),
            of(user_data())
        )
            .prop_map(|(context_ids, user_data)| Ppdu::Aru(Box::new(Aru::Normal(AruNormal {
                context_ids,
                user_data
            })))),
        (of(0i64..7), of(0i64..33))
            .prop_map(|(provider_reason, event_identifier)| Ppdu::Arp(Arp { provider_reason, event_identifier })),
        user_data().prop_map(Ppdu::UserData),
    ]
}

fn slot_of(p: &Ppdu<'_>) -> PpduSlot {
    match p {
        Ppdu::Cp(_) => PpduSlot::Connect,
        Ppdu::Cpa(_) => PpduSlot::Accept,
        Ppdu::Cpr(_) => PpduSlot::Refuse,
        Ppdu::Aru(_) | Ppdu::Arp(_) => PpduSlot::Abort,
        Ppdu::UserData(_) => PpduSlot::Data,
    }
}

// ACSE.

fn external() -> impl Strategy<Value = External<'static>> {
    (of(oid()), of(any::<i64>()), of(octets()), pdv_value()).prop_map(|(d, i, dvd, encoding)| External {
        direct_reference: d,
        indirect_reference: i,
        data_value_descriptor: dvd,
        encoding,
        value_offset: 0,
    })
}

fn ae_title() -> impl Strategy<Value = AeTitle<'static>> {
    (
        of(prop_oneof![oid().prop_map(ApTitle::Oid), raw_with(0x30).prop_map(|r| ApTitle::Raw(Octets::borrowed(r)))]),
        of(prop_oneof![
            any::<i64>().prop_map(AeQualifier::Int),
            raw_with(0x31).prop_map(|r| AeQualifier::Raw(Octets::borrowed(r)))
        ]),
        of(any::<i64>()),
        of(any::<i64>()),
    )
        .prop_map(|(ap_title, ae_qualifier, ap_invocation_id, ae_invocation_id)| AeTitle {
            ap_title,
            ae_qualifier,
            ap_invocation_id,
            ae_invocation_id,
        })
}

/// Extension members: context tags no APDU uses in its root ([14], [15],
/// [16], [20], [40]).
fn extensions() -> impl Strategy<Value = Vec<Octets<'static>>> {
    let one = (prop::sample::select(vec![14u8, 15, 16, 20, 40]), any::<bool>(), vec(tree(), 0..2), style()).prop_map(
        |(n, cons, kids, s)| {
            let cbit = if cons { 0x20 } else { 0 };
            let id = if n < 31 { vec![0x80 | cbit | n] } else { vec![0x9f | cbit, n] };
            let body = if cons {
                ber_variants::Body::Cons(kids)
            } else {
                ber_variants::Body::Prim(kids.iter().flat_map(|k| k.encode(s)).collect())
            };
            Octets::borrowed(leak(Node::new(id, body).encode(s)))
        },
    );
    vec(one, 0..3)
}

fn user_info() -> impl Strategy<Value = Option<UserInformation<'static>>> {
    of(vec(external(), 0..3).prop_map(Into::into))
}

fn aarq() -> impl Strategy<Value = AcseApdu<'static>> {
    (
        (of(bits()), oid(), ae_title(), ae_title()),
        (of(bits()), of(oid()), of(raw_tlv().prop_map(Octets::borrowed)), of(vec(oid(), 0..3))),
        (of(octets()), extensions(), user_info()),
    )
        .prop_map(|((pv, acn, called, calling), (sar, mech, auth, acnl), (ii, ext, ui))| {
            AcseApdu::Aarq(Aarq {
                protocol_version: pv,
                application_context_name: acn,
                called,
                calling,
                sender_acse_requirements: sar,
                mechanism_name: mech,
                calling_authentication_value: auth,
                application_context_name_list: acnl,
                implementation_information: ii,
                extensions: ext,
                user_information: ui,
            })
        })
}

fn aare() -> impl Strategy<Value = AcseApdu<'static>> {
    (
        (
            of(bits()),
            oid(),
            0i64..3,
            prop_oneof![(0i64..15).prop_map(SourceDiagnostic::User), (0i64..3).prop_map(SourceDiagnostic::Provider)],
        ),
        (ae_title(), of(bits()), of(oid()), of(raw_tlv().prop_map(Octets::borrowed)), of(vec(oid(), 0..3))),
        (of(octets()), extensions(), user_info()),
    )
        .prop_map(|((pv, acn, result, diag), (responding, rar, mech, auth, acnl), (ii, ext, ui))| {
            AcseApdu::Aare(Aare {
                protocol_version: pv,
                application_context_name: acn,
                result,
                result_source_diagnostic: diag,
                responding,
                responder_acse_requirements: rar,
                mechanism_name: mech,
                responding_authentication_value: auth,
                application_context_name_list: acnl,
                implementation_information: ii,
                extensions: ext,
                user_information: ui,
            })
        })
}

fn acse_apdu() -> impl Strategy<Value = AcseApdu<'static>> {
    prop_oneof![
        aarq(),
        aare(),
        (of(prop::sample::select(vec![0i64, 1, 30])), extensions(), user_info()).prop_map(
            |(reason, extensions, user_information)| AcseApdu::Rlrq(Rlrq { reason, extensions, user_information })
        ),
        (of(prop::sample::select(vec![0i64, 1, 30])), extensions(), user_info()).prop_map(
            |(reason, extensions, user_information)| AcseApdu::Rlre(Rlre { reason, extensions, user_information })
        ),
        (0i64..2, of(1i64..7), extensions(), user_info()).prop_map(|(s, d, extensions, user_information)| {
            AcseApdu::Abrt(Abrt { abort_source: s, abort_diagnostic: d, extensions, user_information })
        }),
    ]
}

// Which nodes belong to another layer or are raw, and which are strings,
// in our own output.

fn pres_rules(slot: PpduSlot) -> Rules<'static> {
    let opaque: &'static dyn Fn(&[u8], &Node) -> bool = match slot {
        // The X.410 RTORJ / RTAB SET is raw as a whole.
        PpduSlot::Refuse | PpduSlot::Abort => {
            &|path, n| (path.is_empty() && n.id0() == 0x31) || path.ends_with(&[0x61, 0x30, 0xa0])
        }
        _ => &|path, n| {
            path.ends_with(&[0x61, 0x30, 0xa0])
                || (path == [0x31] && n.id0() == 0xa1)
                || path.ends_with(&[0x31, 0xa2, 0xae])
        },
    };
    Rules {
        opaque,
        string: &|path, n| {
            n.id0() == 0x40
                || (path.ends_with(&[0x31, 0xa2]) && matches!(n.id0(), 0x81..=0x83))
                || (path == [0x30] && n.id0() == 0x83)
                || (path.ends_with(&[0x61, 0x30]) && n.id0() == 0x81)
        },
    }
}

/// Raw members (AP titles, AE qualifiers, authentication values,
/// extensions) and EXTERNAL values are kept verbatim; so, harmlessly, are
/// the other values inside explicit tags.
fn acse_rules() -> Rules<'static> {
    Rules {
        opaque: &|path, n| {
            path.ends_with(&[0x28, 0xa0])
                || (path.len() == 1 && matches!(n.id0() & 0x1f, 14 | 15 | 16 | 20 | 31))
                || (path.len() == 2 && path[1] != 0xbe && !(path[0] == 0x61 && path[1] == 0xa3))
        },
        string: &|path, n| {
            (path.len() == 1 && n.id0() == 0x9d) || (path.ends_with(&[0x28]) && matches!(n.id0(), 0x07 | 0x81))
        },
    }
}

fn emit_pres(p: &Ppdu<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    pres::emit(p, &mut out);
    out
}

fn emit_acse(a: &AcseApdu<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    acse::emit(a, &mut out);
    out
}

proptest! {
    #[test]
    fn ppdu_round_trip(p in ppdu()) {
        let slot = slot_of(&p);
        let b = emit_pres(&p);
        let (q, rest) = pres::parse_for(slot, &b).map_err(|e| TestCaseError::fail(format!("{e}: {}", rtse_codec::hex::encode(&b))))?;
        prop_assert!(rest.is_empty());
        prop_assert_eq!(&q, &p);
        prop_assert_eq!(emit_pres(&q), b.clone());
        // Offsets point at the values.
        for pdv in q.user_data().into_iter().flat_map(|u| u.pdvs()) {
            if let PdvValue::Single(raw) = pdv.value {
                prop_assert_eq!(&b[pdv.value_offset..pdv.value_offset + raw.len()], raw);
            }
        }
        if let Ppdu::Cp(cp) = &q {
            if let Some(x) = cp.x410_mode_parameters {
                prop_assert_eq!(&b[cp.x410_offset..cp.x410_offset + x.len()], x);
            }
            prop_assert_eq!(pres::mode_of_connect(&b), Some(cp.mode));
        }
        // The same value in other encodings.
        for (name, v) in variants(&b, &pres_rules(slot)) {
            let (r, _) = pres::parse_for(slot, &v).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            prop_assert_eq!(&r, &p, "{}", name);
        }
    }

    #[test]
    fn acse_round_trip(a in acse_apdu()) {
        let b = emit_acse(&a);
        let (q, rest) = acse::parse(&b).map_err(|e| TestCaseError::fail(format!("{e}: {}", rtse_codec::hex::encode(&b))))?;
        prop_assert!(rest.is_empty());
        prop_assert_eq!(&q, &a);
        prop_assert_eq!(emit_acse(&q), b.clone());
        for x in q.user_information() {
            if let PdvValue::Single(raw) = x.encoding {
                prop_assert_eq!(&b[x.value_offset..x.value_offset + raw.len()], raw);
            }
        }
        for (name, v) in variants(&b, &acse_rules()) {
            let (r, _) = acse::parse(&v).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            prop_assert_eq!(&r, &a, "{}", name);
        }
    }

    #[test]
    fn external_round_trip(x in external()) {
        let mut b = Vec::new();
        acse::emit_external(&x, &mut b);
        let (y, rest) = acse::parse_external(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(rest.is_empty());
        prop_assert_eq!(&y, &x);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..64)) {
        for slot in [PpduSlot::Connect, PpduSlot::Accept, PpduSlot::Refuse, PpduSlot::Abort, PpduSlot::Data] {
            if let Err(e) = pres::parse_for(slot, &b) {
                prop_assert!(e.offset <= b.len());
            }
        }
        if let Err(e) = acse::parse(&b) {
            prop_assert!(e.offset <= b.len());
        }
        let _ = pres::mode_of_connect(&b);
    }
}
