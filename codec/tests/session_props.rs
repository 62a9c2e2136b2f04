//! Property tests: generated SPDUs of every kind and generated TSDUs
//! (category 0 + category 2, category 1 alone) survive emit -> parse;
//! arbitrary bytes never panic and parse to something that re-emits stably.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use rtse_codec::session::*;

// The codes each body decodes itself (mirrors session.rs on purpose: a
// drift makes the round trip fail).
const CONNID: &[u8] = &[9, 10, 11, 12];
const ITEM: &[u8] = &[19, 21, 22, 23, 26, 55, 56, 57, 58];
const CONNECT: &[u8] = &[1, 5, 16, 20, 25, 51, 52, 60, 193, 194];
const REFUSE: &[u8] = &[1, 17, 20, 22, 25, 50];
const RELEASE: &[u8] = &[17, 25, 193];
const ABORT: &[u8] = &[17, 25, 49, 193];
const TOKENS: &[u8] = &[16, 25, 193];
const EMPTY: &[u8] = &[];
const DATA: &[u8] = &[25];
const SYNC: &[u8] = &[15, 25, 42, 193];
const RESYNC: &[u8] = &[25, 26, 27, 42, 193];
const ASTART: &[u8] = &[25, 41, 193];
const LINKING: &[u8] = &[9, 10, 11, 12, 41, 42];
const ARESUME: &[u8] = &[25, 33, 41, 193];
const REASONED: &[u8] = &[25, 49, 50, 193];
const OA: &[u8] = &[21, 22];
const PR: &[u8] = &[24];

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

/// Octets, now and then long enough for the 3-octet length form.
fn bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..max.min(8)),
        1 => vec(any::<u8>(), 0..max),
        1 => vec(any::<u8>(), 253..258),
    ]
    .prop_map(leak)
}

fn obytes(max: usize) -> impl Strategy<Value = Option<&'static [u8]>> {
    option::of(bytes(max))
}

fn ou8() -> impl Strategy<Value = Option<u8>> {
    option::of(any::<u8>())
}

fn serial() -> BoxedStrategy<SerialNumber> {
    prop_oneof![
        (0..=SerialNumber::MAX).prop_map(|n| SerialNumber::new(n).unwrap()),
        "[0-9]{1,6}".prop_map(|s| SerialNumber::from_digits(s.as_bytes()).unwrap()),
    ]
    .boxed()
}

fn tsdu_max() -> impl Strategy<Value = Option<TsduMaxSize>> {
    option::of(
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| TsduMaxSize { initiator_to_responder: a, responder_to_initiator: b }),
    )
}

/// Unknown parameters for a body that decodes `known` itself.
fn params(known: &'static [u8]) -> BoxedStrategy<Params<'static>> {
    let code = any::<u8>().prop_filter("typed code", move |c| !known.contains(c));
    let value = prop_oneof![6 => vec(any::<u8>(), 0..6), 1 => vec(any::<u8>(), 250..300)];
    prop_oneof![
        3 => Just(Params::EMPTY),
        1 => vec((code, value), 1..4).prop_map(|units| {
            let mut raw = Vec::new();
            for (c, v) in units {
                raw.push(c);
                if v.len() < 255 {
                    raw.push(v.len() as u8);
                } else {
                    raw.push(255);
                    raw.extend_from_slice(&(v.len() as u16).to_be_bytes());
                }
                raw.extend_from_slice(&v);
            }
            Params::from_raw(leak(raw)).unwrap()
        }),
    ]
    .boxed()
}

fn connid() -> BoxedStrategy<ConnectionId<'static>> {
    (obytes(64), obytes(64), obytes(64), obytes(4), params(CONNID))
        .prop_map(|(called_ref, calling_ref, common_ref, additional_ref, params)| ConnectionId {
            called_ref,
            calling_ref,
            common_ref,
            additional_ref,
            params,
        })
        .boxed()
}

fn item() -> BoxedStrategy<ConnectAcceptItem<'static>> {
    (
        ou8(),
        tsdu_max(),
        ou8(),
        option::of(serial()),
        option::of(any::<u8>().prop_map(TokenSetting)),
        obytes(6),
        obytes(6),
        obytes(10),
        obytes(10),
        params(ITEM),
    )
        .prop_map(|(po, tm, v, isn, ts, a, b, c, d, params)| ConnectAcceptItem {
            protocol_options: po,
            tsdu_max_size: tm,
            version: v,
            initial_serial: isn,
            token_setting: ts,
            second_initial_serial: a,
            upper_limit_serial: b,
            large_initial_serial: c,
            large_second_initial_serial: d,
            params,
        })
        .boxed()
}

fn connect() -> BoxedStrategy<Connect<'static>> {
    (
        option::of(connid()),
        option::of(item()),
        option::of(any::<u8>().prop_map(Tokens)),
        option::of(any::<u16>().prop_map(Requirements)),
        obytes(16),
        obytes(16),
        ou8(),
        ou8(),
        obytes(600),
        obytes(600),
        params(CONNECT),
    )
        .prop_map(|(id, item, ti, req, cs, ds, ov, en, ud, xd, params)| Connect {
            connection_id: id,
            item,
            token_item: ti,
            requirements: req,
            calling_ssel: cs,
            called_ssel: ds,
            data_overflow: ov,
            enclosure: en,
            // User Data and Extended User Data are alternatives (X.225 v2).
            extended_user_data: if ud.is_some() { None } else { xd },
            user_data: ud,
            params,
        })
        .boxed()
}

fn refuse() -> BoxedStrategy<Refuse<'static>> {
    (
        option::of(connid()),
        ou8(),
        option::of(any::<u16>().prop_map(Requirements)),
        ou8(),
        ou8(),
        option::of((any::<u8>(), bytes(300)).prop_map(|(code, data)| RefuseReason { code, data })),
        params(REFUSE),
    )
        .prop_map(|(id, td, req, v, en, reason, params)| Refuse {
            connection_id: id,
            transport_disconnect: td,
            requirements: req,
            version: v,
            enclosure: en,
            reason,
            params,
        })
        .boxed()
}

fn release() -> BoxedStrategy<Release<'static>> {
    (ou8(), ou8(), obytes(300), params(RELEASE))
        .prop_map(|(td, en, ud, params)| Release { transport_disconnect: td, enclosure: en, user_data: ud, params })
        .boxed()
}

fn abort() -> BoxedStrategy<Abort<'static>> {
    (ou8(), obytes(9), ou8(), obytes(300), params(ABORT))
        .prop_map(|(td, rf, en, ud, params)| Abort {
            transport_disconnect: td,
            reflect: rf,
            enclosure: en,
            user_data: ud,
            params,
        })
        .boxed()
}

fn tokens() -> BoxedStrategy<TokenTransfer<'static>> {
    (option::of(any::<u8>().prop_map(Tokens)), ou8(), obytes(300), params(TOKENS))
        .prop_map(|(ti, en, ud, params)| TokenTransfer { token_item: ti, enclosure: en, user_data: ud, params })
        .boxed()
}

fn empty() -> BoxedStrategy<Empty<'static>> {
    params(EMPTY).prop_map(|params| Empty { params }).boxed()
}

fn data() -> BoxedStrategy<Data<'static>> {
    (ou8(), params(DATA), bytes(2000))
        .prop_map(|(en, params, user_info)| Data { enclosure: en, params, user_info })
        .boxed()
}

fn sync(sync_type: BoxedStrategy<Option<u8>>) -> BoxedStrategy<Sync<'static>> {
    (sync_type, serial(), ou8(), obytes(300), params(SYNC))
        .prop_map(|(st, serial, en, ud, params)| Sync { sync_type: st, serial, enclosure: en, user_data: ud, params })
        .boxed()
}

fn resync() -> BoxedStrategy<Resync<'static>> {
    (option::of(any::<u8>().prop_map(TokenSetting)), ou8(), serial(), ou8(), obytes(300), params(RESYNC))
        .prop_map(|(ts, rt, serial, en, ud, params)| Resync {
            token_setting: ts,
            resync_type: rt,
            serial,
            enclosure: en,
            user_data: ud,
            params,
        })
        .boxed()
}

fn activity_start() -> BoxedStrategy<ActivityStart<'static>> {
    (bytes(6), ou8(), obytes(300), params(ASTART))
        .prop_map(|(id, en, ud, params)| ActivityStart { activity_id: id, enclosure: en, user_data: ud, params })
        .boxed()
}

fn linking() -> BoxedStrategy<Linking<'static>> {
    (obytes(64), obytes(64), obytes(64), obytes(4), bytes(6), serial(), params(LINKING))
        .prop_map(|(a, b, c, d, old, serial, params)| Linking {
            called_ref: a,
            calling_ref: b,
            common_ref: c,
            additional_ref: d,
            old_activity_id: old,
            serial,
            params,
        })
        .boxed()
}

fn activity_resume() -> BoxedStrategy<ActivityResume<'static>> {
    (linking(), bytes(6), ou8(), obytes(300), params(ARESUME))
        .prop_map(|(linking, id, en, ud, params)| ActivityResume {
            linking,
            activity_id: id,
            enclosure: en,
            user_data: ud,
            params,
        })
        .boxed()
}

fn reasoned() -> BoxedStrategy<Reasoned<'static>> {
    (obytes(9), ou8(), ou8(), obytes(300), params(REASONED))
        .prop_map(|(rf, r, en, ud, params)| Reasoned { reflect: rf, reason: r, enclosure: en, user_data: ud, params })
        .boxed()
}

fn overflow_accept() -> BoxedStrategy<OverflowAccept<'static>> {
    (tsdu_max(), ou8(), params(OA))
        .prop_map(|(tm, v, params)| OverflowAccept { tsdu_max_size: tm, version: v, params })
        .boxed()
}

fn prepare() -> BoxedStrategy<Prepare<'static>> {
    (any::<u8>(), params(PR)).prop_map(|(prepare_type, params)| Prepare { prepare_type, params }).boxed()
}

fn any_sync_type() -> BoxedStrategy<Option<u8>> {
    ou8().boxed()
}

/// AE: a Sync Type with bit 0x01 set would make it a MAP.
fn ae_sync_type() -> BoxedStrategy<Option<u8>> {
    option::of(any::<u8>().prop_map(|t| t & !SYNC_ACTIVITY_NOT_ENDED)).boxed()
}

/// Category-2 SPDUs (and TD, accepted after GT too).
fn category2() -> BoxedStrategy<Spdu<'static>> {
    prop_oneof![
        data().prop_map(Spdu::Dt),
        sync(any_sync_type()).prop_map(Spdu::Mip),
        sync(any_sync_type()).prop_map(Spdu::Mia),
        sync(any_sync_type()).prop_map(Spdu::Map),
        sync(any_sync_type()).prop_map(Spdu::Maa),
        sync(ae_sync_type()).prop_map(Spdu::Ae),
        sync(any_sync_type()).prop_map(Spdu::Aea),
        resync().prop_map(Spdu::Rs),
        resync().prop_map(Spdu::Ra),
        activity_start().prop_map(Spdu::As),
        activity_resume().prop_map(|a| Spdu::Ar(Box::new(a))),
        reasoned().prop_map(Spdu::Ai),
        empty().prop_map(Spdu::Aia),
        reasoned().prop_map(Spdu::Ad),
        empty().prop_map(Spdu::Ada),
        release().prop_map(Spdu::Cd),
        release().prop_map(Spdu::Cda),
        reasoned().prop_map(Spdu::Ed),
        reasoned().prop_map(Spdu::Er),
        data().prop_map(Spdu::Td),
    ]
    .boxed()
}

fn category0() -> BoxedStrategy<Spdu<'static>> {
    prop_oneof![tokens().prop_map(Spdu::Gt), tokens().prop_map(Spdu::Pt)].boxed()
}

/// SPDUs sent alone.
fn alone() -> BoxedStrategy<Spdu<'static>> {
    prop_oneof![
        connect().prop_map(|c| Spdu::Cn(Box::new(c))),
        connect().prop_map(|c| Spdu::Ac(Box::new(c))),
        refuse().prop_map(|r| Spdu::Rf(Box::new(r))),
        release().prop_map(Spdu::Fn),
        release().prop_map(Spdu::Dn),
        release().prop_map(Spdu::Nf),
        abort().prop_map(Spdu::Ab),
        empty().prop_map(Spdu::Aa),
        empty().prop_map(Spdu::Gtc),
        empty().prop_map(Spdu::Gta),
        data().prop_map(Spdu::Td),
        release().prop_map(Spdu::Cdo),
        overflow_accept().prop_map(Spdu::Oa),
        prepare().prop_map(Spdu::Pr),
        data().prop_map(Spdu::Ex),
        category0(),
    ]
    .boxed()
}

/// The connection context in which `kind`'s bytes denote `kind`.
fn context_for(kind: SpduKind) -> Context {
    match kind {
        SpduKind::Map => Context { requirements: Some(Requirements(0x0019)), ..Context::STRICT },
        SpduKind::Maa => Context { last_major: Some(SpduKind::Map), ..Context::STRICT },
        _ => Context::STRICT,
    }
}

fn emitted(s: &Spdu<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    emit(s, &mut out);
    assert_eq!(out.len(), encoded_len(s));
    out
}

fn single_round_trip(s: Spdu<'static>, previous: Option<SpduKind>) -> Result<(), TestCaseError> {
    let b = emitted(&s);
    let (back, rest) =
        parse_at(&b, previous, &context_for(s.kind())).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, &s);
    prop_assert!(rest.is_empty());
    let json = serde_json::to_value(&s).unwrap();
    prop_assert_eq!(json["pdu"].as_str(), Some(s.name()));
    Ok(())
}

proptest! {
    #[test]
    fn spdu_alone_round_trips(s in alone()) {
        single_round_trip(s.clone(), None)?;
        // And as a TSDU of its own.
        let kind = s.kind();
        let t = Tsdu::one(s);
        let mut b = Vec::new();
        emit_tsdu(&t, &mut b);
        prop_assert_eq!(b.len(), encoded_len_tsdu(&t));
        prop_assert_eq!(parse_tsdu_with(&b, &context_for(kind)).map_err(|e| TestCaseError::fail(e.to_string()))?, t);
    }

    #[test]
    fn spdu_after_gt_round_trips(s in category2()) {
        single_round_trip(s, Some(SpduKind::Gt))?;
    }

    #[test]
    fn tsdu_category0_plus_category2_round_trips(first in category0(), second in category2()) {
        let t = Tsdu::pair(first, second.clone());
        prop_assert_eq!(t.len(), 2);
        let mut b = Vec::new();
        emit_tsdu(&t, &mut b);
        prop_assert_eq!(b.len(), encoded_len_tsdu(&t));
        let back = parse_tsdu_with(&b, &context_for(second.kind())).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(back.last().unwrap().user_data(), second.user_data());
    }

    #[test]
    fn extended_concatenation_round_trips(first in category0(), rest in vec(category2().prop_filter("DT and TD run to the end", |s| !matches!(s.kind(), SpduKind::Dt | SpduKind::Td)), 1..6), last in option::of(data())) {
        let mut t = Tsdu::one(first);
        for s in rest.iter().filter(|s| !matches!(s.kind(), SpduKind::Map | SpduKind::Maa)) {
            assert!(t.push(s.clone()));
        }
        if let Some(d) = last {
            assert!(t.push(Spdu::Dt(d)));
        }
        let mut b = Vec::new();
        emit_tsdu(&t, &mut b);
        let ctx = Context { extended_concatenation: true, ..Context::STRICT };
        prop_assert_eq!(parse_tsdu_with(&b, &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?, t);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..64), lenient in any::<bool>()) {
        let ctx = if lenient { Context::LENIENT } else { Context::STRICT };
        match parse_tsdu_with(&b, &ctx) {
            Ok(t) => {
                let mut out = Vec::new();
                emit_tsdu(&t, &mut out);
                let again = parse_tsdu_with(&out, &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(again.iter().eq(t.iter()));
            }
            Err(e) => prop_assert!(e.offset <= b.len()),
        }
    }

    #[test]
    fn structured_mutations_never_panic(s in alone(), at in any::<prop::sample::Index>(), v in any::<u8>()) {
        let mut b = emitted(&s);
        if !b.is_empty() {
            let i = at.index(b.len());
            b[i] = v;
        }
        if let Err(e) = parse_tsdu(&b) {
            prop_assert!(e.offset <= b.len());
        }
    }
}

#[test]
fn a_tsdu_holds_up_to_the_limit_in_order_inline_or_not() {
    let mut t = Tsdu::new();
    assert!(t.is_empty() && t.first().is_none() && t.last().is_none());
    let spdus: Vec<Spdu<'static>> = (0..8u32).map(|i| Spdu::mip(SerialNumber::new(i + 1).unwrap(), true)).collect();
    for (i, s) in spdus.iter().enumerate() {
        assert!(t.push(s.clone()));
        assert_eq!(t.len(), i + 1);
        assert_eq!(t.last(), Some(s));
        assert_eq!(t.get(i), Some(s));
    }
    assert!(!t.push(Spdu::gtc()), "a ninth SPDU is refused");
    assert_eq!(t.len(), 8);
    assert_eq!(t.get(8), None);
    assert_eq!(t.first(), spdus.first());
    assert!(t.iter().eq(spdus.iter()));
    assert!((&t).into_iter().eq(spdus.iter()));
    let mut short = Tsdu::one(spdus[0].clone());
    assert_eq!(short.get(1), None);
    assert!(short.push(spdus[1].clone()));
    assert_ne!(short, t);
}
