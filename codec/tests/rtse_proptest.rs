//! Round trips: every value we can construct emits to octets that parse
//! back to the same value, `encoded_len` matches, and JSON never fails.
//! Raw TLV fields borrow from leaked buffers (test-only, small).

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use rtse_codec::ber::{write_prim, write_tlv, BitString, Octets, Tag};
use rtse_codec::p1::{
    self, AuthenticatedBind, Bind, BindError, Credentials, MtsIdentifier, Password, PasswordForm, Priority,
    TransferSpec,
};
use rtse_codec::rtse::{
    self, AbortReason, ConnectionData, DialogueMode, RefuseReason, Rtab, Rtoac, Rtorj, Rtorq, RtseApdu,
    SessionConnectionIdentifier, SsUserRef,
};
use rtse_codec::x410::{self, AbortInformation, PAccept, PConnect, PRefuse, X410Pdu};

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn octets(max: usize) -> impl Strategy<Value = Octets<'static>> {
    vec(any::<u8>(), 0..max).prop_map(Octets::owned)
}

/// One valid TLV with a tag chosen from `tags` (a constructed tag wraps up
/// to three primitive TLVs).
fn raw_tlv(tags: &'static [Tag]) -> impl Strategy<Value = &'static [u8]> {
    (
        prop::sample::select(tags),
        vec((prop::sample::select(&[0x04u8, 0x16, 0x80, 0x02][..]), vec(any::<u8>(), 0..12)), 0..3),
        vec(any::<u8>(), 0..150),
    )
        .prop_map(|(tag, inner, prim)| {
            let mut out = Vec::new();
            if tag.constructed {
                write_tlv(&mut out, tag, |o| {
                    for (t, c) in &inner {
                        o.push(*t);
                        o.push(c.len() as u8);
                        o.extend_from_slice(c);
                    }
                });
            } else {
                write_prim(&mut out, tag, &prim);
            }
            leak(out)
        })
}

const ANY_TAGS: &[Tag] = &[
    Tag::ctx_c(16),
    Tag::ctx_c(1),
    Tag::ctx_c(17),
    Tag::univ_c(16),
    Tag::univ(4),
    Tag::univ(2),
    Tag::ctx(5),
    Tag::ctx_c(40),
];

fn conn_data() -> impl Strategy<Value = ConnectionData<'static>> {
    prop_oneof![
        option::of(raw_tlv(ANY_TAGS)).prop_map(ConnectionData::Open),
        (any::<bool>(), octets(20), octets(20), option::of(octets(20))).prop_map(|(t61, r, c, a)| {
            ConnectionData::Recover(SessionConnectionIdentifier {
                calling_ss_user_reference: if t61 { SsUserRef::T61String(r) } else { SsUserRef::OctetString(r) },
                common_reference: c,
                additional_reference_information: a,
            })
        }),
    ]
}

fn rtorq() -> impl Strategy<Value = Rtorq<'static>> {
    (
        option::of(any::<i64>()),
        option::of(any::<i64>()),
        option::of(any::<i64>().prop_map(DialogueMode::from_i64)),
        conn_data(),
        option::of(any::<i64>()),
    )
        .prop_map(|(checkpoint_size, window_size, dialogue_mode, connection_data, application_protocol)| Rtorq {
            checkpoint_size,
            window_size,
            dialogue_mode,
            connection_data,
            application_protocol,
        })
}

fn rtoac() -> impl Strategy<Value = Rtoac<'static>> {
    (option::of(any::<i64>()), option::of(any::<i64>()), conn_data()).prop_map(
        |(checkpoint_size, window_size, connection_data)| Rtoac { checkpoint_size, window_size, connection_data },
    )
}

fn bits() -> impl Strategy<Value = BitString<'static>> {
    (0u8..8, vec(any::<u8>(), 0..3))
        .prop_map(|(u, d)| BitString { unused: if d.is_empty() { 0 } else { u }, data: Octets::owned(d) })
}

fn apdu() -> impl Strategy<Value = RtseApdu<'static>> {
    prop_oneof![
        rtorq().prop_map(RtseApdu::Rtorq),
        rtoac().prop_map(RtseApdu::Rtoac),
        (option::of(any::<i64>().prop_map(RefuseReason::from_i64)), option::of(raw_tlv(ANY_TAGS)))
            .prop_map(|(refuse_reason, user_data)| RtseApdu::Rtorj(Rtorj { refuse_reason, user_data })),
        any::<i64>().prop_map(RtseApdu::Rttp),
        octets(300).prop_map(RtseApdu::Rttr),
        (option::of(any::<i64>().prop_map(AbortReason::from_i64)), option::of(bits()), option::of(raw_tlv(ANY_TAGS)))
            .prop_map(|(abort_reason, reflected_parameter, user_data)| RtseApdu::Rtab(Rtab {
                abort_reason,
                reflected_parameter,
                user_data
            })),
    ]
}

fn x410_pdu() -> impl Strategy<Value = X410Pdu<'static>> {
    prop_oneof![
        (any::<i64>(), rtorq()).prop_map(|(data_transfer_syntax, user_data)| X410Pdu::PConnect(PConnect {
            data_transfer_syntax,
            user_data
        })),
        (any::<i64>(), rtoac()).prop_map(|(data_transfer_syntax, user_data)| X410Pdu::PAccept(PAccept {
            data_transfer_syntax,
            user_data
        })),
        any::<i64>().prop_map(|v| X410Pdu::PRefuse(PRefuse { refuse_reason: RefuseReason::from_i64(v) })),
        any::<i64>().prop_map(X410Pdu::Priority),
        (option::of(any::<i64>().prop_map(AbortReason::from_i64)), option::of(bits())).prop_map(
            |(abort_reason, reflected_parameter)| X410Pdu::AbortInformation(AbortInformation {
                abort_reason,
                reflected_parameter
            })
        ),
    ]
}

const STRONG: &[Tag] = &[Tag::ctx_c(0)];
const SECURITY: &[Tag] = &[Tag::ctx_c(2)];
const EXTENSION: &[Tag] = &[Tag::ctx(3), Tag::app(4), Tag::ctx_c(40), Tag::univ(4)];

fn bind() -> impl Strategy<Value = Bind<'static>> {
    let creds = prop_oneof![
        (any::<bool>(), octets(20)).prop_map(|(ia5, v)| Credentials::Simple(Password::new(
            if ia5 { PasswordForm::Ia5String } else { PasswordForm::OctetString },
            v
        ))),
        raw_tlv(STRONG).prop_map(Credentials::Strong),
    ];
    prop_oneof![
        Just(Bind::Unauthenticated),
        (octets(30), creds, option::of(raw_tlv(SECURITY)), vec(raw_tlv(EXTENSION), 0..3)).prop_map(
            |(name, credentials, security_context, extensions)| {
                Bind::Authenticated(AuthenticatedBind { name, credentials, security_context, extensions })
            }
        ),
    ]
}

fn text(max: usize) -> impl Strategy<Value = &'static str> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap().prop_map(|s| &*Box::leak(s.into_boxed_str()))
}

proptest! {
    #[test]
    fn rtse_round_trip(a in apdu()) {
        let mut out = Vec::new();
        rtse::emit(&a, &mut out);
        prop_assert_eq!(rtse::encoded_len(&a), out.len());
        let (back, rest) = rtse::parse(&out).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(&back, &a);
        serde_json::to_string(&a).unwrap();
        // The open value lies in the output where offset_in says.
        if let Some(d) = back.user_data() {
            let at = rtse::offset_in(&out, d).unwrap();
            prop_assert_eq!(&out[at..at + d.len()], d);
        }
    }

    #[test]
    fn x410_round_trip(p in x410_pdu()) {
        let mut out = Vec::new();
        x410::emit(&p, &mut out);
        prop_assert_eq!(x410::encoded_len(&p), out.len());
        let (back, rest) = x410::parse(p.slot(), &out).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(&back, &p);
        serde_json::to_string(&p).unwrap();
    }

    #[test]
    fn bind_round_trip(b in bind(), wrapped in any::<bool>(), e in any::<i64>()) {
        let mut out = Vec::new();
        p1::emit_bind_argument(&b, wrapped, &mut out);
        prop_assert_eq!(&p1::parse_bind_argument(&out, wrapped).unwrap(), &b);
        out.clear();
        p1::emit_bind_result(&b, wrapped, &mut out);
        prop_assert_eq!(&p1::parse_bind_result(&out, wrapped).unwrap(), &b);
        let json = serde_json::to_string(&p1::P1Pdu::BindArgument(b.clone())).unwrap();
        if let Bind::Authenticated(AuthenticatedBind { credentials: Credentials::Simple(pw), .. }) = &b {
            if pw.value().len() >= 4 {
                prop_assert!(!json.contains(&rtse_codec::hex::encode(pw.value())));
            }
        }
        out.clear();
        let e = BindError::from_i64(e);
        p1::emit_bind_error(e, wrapped, &mut out);
        prop_assert_eq!(p1::parse_bind_error(&out, wrapped).unwrap(), e);
    }

    #[test]
    fn built_transfers_read_back(
        c in text(3), a in text(16), p in option::of(text(16)), l in text(32),
        prio in option::of(0i64..4), ct in 0i64..1000, n in 1usize..4, content in vec(any::<u8>(), 0..300),
    ) {
        let id = MtsIdentifier::new(c, a, p, l);
        let mut spec = TransferSpec::new(id.clone());
        spec.priority = prio.map(Priority::from_i64);
        spec.content_type = ct;
        spec.recipients = vec![spec.recipients[0].clone(); n];
        let mut msg = Vec::new();
        p1::emit_message(&spec, &content, &mut msg);
        let (t, rest) = p1::parse_mts_apdu(&msg).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(t.kind, p1::TransferKind::Message);
        prop_assert_eq!(&t.mts_identifier, &id);
        prop_assert_eq!(t.priority, spec.priority);
        prop_assert_eq!(&t.content_type, &Some(p1::ContentType::BuiltIn(ct)));
        serde_json::to_string(&p1::P1Pdu::from_transfer(t)).unwrap();
        let probe = p1::build_probe(&id);
        let (t, _) = p1::parse_mts_apdu(&probe).unwrap();
        prop_assert_eq!((t.kind, &t.mts_identifier, t.priority), (p1::TransferKind::Probe, &id, None));
    }
}
