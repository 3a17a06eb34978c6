use super::Prefer;
use super::map::{AddressPart, FieldMap, StripeField};
use super::merge::{Plan, Settle, Sides, Verdict, plan};
use super::values::{Values, local_value, of_payload};

fn map() -> FieldMap {
    FieldMap::parse("phone=phone, address.city=city, preferred_locales=locales").unwrap()
}

fn values(pairs: &[(&str, &str)]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn local(name: &str, email: &str, phone: &str, city: &str) -> Vec<Option<String>> {
    [name, email, phone, city, ""]
        .iter()
        .map(|v| (!v.is_empty()).then(|| v.to_string()))
        .collect()
}

/// Sides with a stored base and a copy of Stripe's side that says every field.
fn read<'a>(local: &'a [Option<String>], stripe: &'a Values, base: &'a Values) -> Sides<'a> {
    Sides {
        local,
        stripe: Some(stripe),
        base: Some(base),
        ..Sides::default()
    }
}

fn verdicts(plan: &Plan) -> Vec<(String, Verdict)> {
    plan.fields
        .iter()
        .map(|f| (f.field.key(), f.verdict))
        .collect()
}

fn verdict(plan: &Plan, key: &str) -> Verdict {
    plan.fields
        .iter()
        .find(|f| f.field.key() == key)
        .unwrap()
        .verdict
}

#[test]
fn the_map_takes_every_documented_field_and_keeps_name_and_email_first() {
    let map = FieldMap::parse(
        "phone=phone,description=bio,preferred_locales=locales,address.line1=a1,\
         address.line2=a2,address.city=city,address.state=st,address.postal_code=zip,\
         address.country=country,shipping.name=ship_name,shipping.phone=ship_phone,\
         shipping.address.line1=s1,shipping.address.country=s_country,metadata.team=team,\
         name=name",
    )
    .unwrap();
    let keys: Vec<String> = map.mappings().iter().map(|m| m.field.key()).collect();
    assert_eq!(keys[0], "name");
    assert_eq!(keys[1], "email");
    assert_eq!(map.len(), 16);
    assert_eq!(
        map.find("shipping.address.country").unwrap().field,
        StripeField::ShippingAddress(AddressPart::Country)
    );
    assert_eq!(FieldMap::parse("").unwrap(), FieldMap::default());
}

#[test]
fn the_map_refuses_what_it_cannot_sync_naming_it() {
    for (spec, named) in [
        ("fax=fax", "\"fax\""),
        ("address.planet=planet", "address.planet"),
        ("metadata.user_id=id", "metadata.user_id"),
        ("phone", "\"phone\""),
        ("phone=phone;drop", "phone;drop"),
        ("phone=phone,phone=mobile", "phone twice"),
        ("phone=phone,description=phone", "column phone"),
        ("email=login", "\"login\""),
        ("shipping.phone=p", "shipping.name"),
        ("metadata.a[b]=x", "a[b]"),
    ] {
        let err = FieldMap::parse(spec).unwrap_err();
        assert!(err.contains(named), "{spec}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn locales_compare_as_lists_whatever_separates_them() {
    let field = StripeField::PreferredLocales;
    assert_eq!(local_value(&field, Some("en, fr  de")), "en,fr,de");
    assert_eq!(local_value(&field, None), "");
    assert_eq!(local_value(&StripeField::Phone, None), "");
}

#[test]
fn each_row_of_the_three_way_table() {
    let map = map();
    let base = values(&[
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("phone", "1"),
        ("address.city", "Oslo"),
        ("preferred_locales", ""),
    ]);
    // Local phone changed; Stripe's city changed; Stripe's email changed.
    let stripe = values(&[
        ("name", "Ann"),
        ("email", "billing@ann.example"),
        ("phone", "1"),
        ("address.city", "Bergen"),
    ]);
    let local = local("Ann", "ann@example.com", "2", "Oslo");
    let sides = read(&local, &stripe, &base);
    let plan = plan(&map, &sides, Settle::Report, false);
    assert_eq!(
        verdicts(&plan),
        vec![
            ("name".into(), Verdict::Agree),
            ("email".into(), Verdict::ChangedInStripe),
            ("phone".into(), Verdict::Push),
            ("address.city".into(), Verdict::Pull),
            ("preferred_locales".into(), Verdict::Agree),
        ]
    );
    assert_eq!(plan.base["phone"], "2");
    assert_eq!(plan.base["address.city"], "Bergen");
    assert_eq!(plan.base["email"], "ann@example.com");
}

#[test]
fn both_sides_changed_is_a_conflict_until_a_side_is_preferred() {
    let map = map();
    let base = values(&[("name", "Ann"), ("email", "a@x.io"), ("phone", "1")]);
    let stripe = values(&[("name", "Ann"), ("email", "b@x.io"), ("phone", "3")]);
    let local = local("Ann", "c@x.io", "2", "");
    let sides = read(&local, &stripe, &base);
    let report = plan(&map, &sides, Settle::Report, false);
    assert_eq!(verdict(&report, "phone"), Verdict::Conflict);
    assert_eq!(verdict(&report, "email"), Verdict::Conflict);
    assert_eq!(report.base["phone"], "1", "a conflict keeps the base");
    assert!(!report.pushes_anything());

    let mine = plan(&map, &sides, Settle::All(Prefer::Local), false);
    assert_eq!(verdict(&mine, "phone"), Verdict::Push);
    assert_eq!(verdict(&mine, "email"), Verdict::Push);

    let theirs = plan(&map, &sides, Settle::Field("phone", Prefer::Stripe), false);
    assert_eq!(verdict(&theirs, "phone"), Verdict::Pull);
    assert_eq!(verdict(&theirs, "email"), Verdict::Conflict);

    // Stripe's billing email kept: the base becomes the login email, so it
    // stays "changed in Stripe" and is never pushed over.
    let kept = plan(&map, &sides, Settle::All(Prefer::Stripe), false);
    assert_eq!(verdict(&kept, "email"), Verdict::ChangedInStripe);
    assert_eq!(kept.base["email"], "c@x.io");
}

#[test]
fn nothing_differs_is_quiet() {
    let map = map();
    let base = values(&[
        ("name", "Ann"),
        ("email", "a@x.io"),
        ("phone", "1"),
        ("address.city", ""),
        ("preferred_locales", ""),
    ]);
    let stripe = values(&[("name", "Ann"), ("email", "a@x.io"), ("phone", "1")]);
    let local = local("Ann", "a@x.io", "1", "");
    let sides = read(&local, &stripe, &base);
    assert!(plan(&map, &sides, Settle::Report, false).is_quiet());
    let forced = plan(&map, &sides, Settle::Report, true);
    // Every field but the locales: empty on both sides, there is nothing to
    // clear, and an empty list is no value Stripe's API takes.
    assert_eq!(forced.pushes().count(), 4);
}

#[test]
fn a_user_without_a_base_starts_from_the_local_values() {
    let map = map();
    let local = local("Ann", "a@x.io", "1", "Oslo");
    // No copy of the new fields yet: nothing to do but record the base.
    let unknown = Sides {
        local: &local,
        stripe_name_email: Some(("Ann", "a@x.io")),
        pushed_matches_local: true,
        ..Sides::default()
    };
    let first = plan(&map, &unknown, Settle::Report, false);
    assert!(!first.pushes_anything());
    assert!(first.pulls().next().is_none());
    assert!(first.base_moves, "name and email were read: recorded");
    let unread = Sides {
        stripe_name_email: None,
        ..unknown.clone()
    };
    assert!(
        plan(&map, &unread, Settle::Report, false).is_quiet(),
        "nothing read, nothing to record"
    );

    // Stripe has a city of its own (pulled) and no phone (the app's is pushed).
    let stripe = values(&[
        ("name", "Ann"),
        ("email", "a@x.io"),
        ("address.city", "Bergen"),
    ]);
    let known = Sides {
        stripe: Some(&stripe),
        ..unknown.clone()
    };
    let plan = plan(&map, &known, Settle::Report, false);
    assert_eq!(verdict(&plan, "phone"), Verdict::Push);
    assert_eq!(verdict(&plan, "address.city"), Verdict::Pull);
    assert_eq!(verdict(&plan, "name"), Verdict::Agree);
}

#[test]
fn a_renamed_user_from_before_bases_is_pushed_as_before() {
    let map = FieldMap::default();
    let local = local("Ann B", "a@x.io", "", "");
    let sides = Sides {
        local: &local[..2],
        stripe_name_email: Some(("Ann", "a@x.io")),
        pushed_matches_local: false,
        ..Sides::default()
    };
    let plan = plan(&map, &sides, Settle::Report, false);
    assert_eq!(verdict(&plan, "name"), Verdict::Push);
    assert_eq!(verdict(&plan, "email"), Verdict::Agree);
    // Never read from Stripe at all: pushed too.
    let unread = Sides {
        stripe_name_email: None,
        ..sides
    };
    assert_eq!(
        super::merge::plan(&map, &unread, Settle::Report, false)
            .pushes()
            .count(),
        2
    );
}

#[test]
fn a_name_the_app_would_refuse_is_shown_not_pulled() {
    let map = FieldMap::default();
    let base = values(&[("name", "Ann"), ("email", "a@x.io")]);
    let stripe = values(&[("email", "a@x.io")]);
    let local = local("Ann", "a@x.io", "", "");
    let sides = read(&local[..2], &stripe, &base);
    let plan = plan(&map, &sides, Settle::Report, false);
    assert_eq!(verdict(&plan, "name"), Verdict::ChangedInStripe);
}

#[test]
fn a_full_payload_says_every_field_and_a_lean_one_says_none() {
    let full = serde_json::json!({
        "id": "cus_1", "name": "Ann", "email": "a@x.io", "phone": "+47 1",
        "description": null, "preferred_locales": ["nb", "en"],
        "address": {"line1": "Gate 1", "line2": null, "city": "Oslo", "state": null,
                    "postal_code": "0150", "country": "NO"},
        "shipping": null, "metadata": {"user_id": "5", "team": "red"},
    });
    let values = of_payload(&full).unwrap();
    assert_eq!(values["phone"], "+47 1");
    assert_eq!(values["preferred_locales"], "nb,en");
    assert_eq!(values["address.city"], "Oslo");
    assert_eq!(values["metadata.team"], "red");
    assert!(!values.contains_key("metadata.user_id"));
    assert!(!values.contains_key("address.line2"));
    let lean = serde_json::json!({"id": "cus_1", "name": "Ann", "email": "a@x.io"});
    assert!(of_payload(&lean).is_none());
}

#[test]
fn a_value_longer_than_the_column_takes_is_shown_not_pulled() {
    let facts = crate::db::dialect::catalog::ColumnFacts {
        name: "country".into(),
        type_: "character varying".into(),
        nullable: true,
        max_chars: Some(2),
    };
    let map = FieldMap::parse("address.country=country")
        .unwrap()
        .with_column_facts(&[facts]);
    let base = values(&[
        ("name", "Ann"),
        ("email", "a@x.io"),
        ("address.country", "NO"),
    ]);
    let stripe = values(&[
        ("name", "Ann"),
        ("email", "a@x.io"),
        ("address.country", "Norway"),
    ]);
    let local = vec![Some("Ann".into()), Some("a@x.io".into()), Some("NO".into())];
    let sides = read(&local, &stripe, &base);
    let plan = plan(&map, &sides, Settle::Report, false);
    assert_eq!(verdict(&plan, "address.country"), Verdict::ChangedInStripe);
    assert!(plan.is_quiet(), "nothing to write");
}

/// Name, email, the shipping group (name, city) and the locales, as columns.
fn shipping_sides(ship_name: &str, ship_city: &str, locales: &str) -> Vec<Option<String>> {
    ["Ann", "ann@example.com", ship_name, ship_city, locales]
        .iter()
        .map(|v| (!v.is_empty()).then(|| v.to_string()))
        .collect()
}

fn shipping_map() -> FieldMap {
    FieldMap::parse("shipping.name=ship_name,shipping.address.city=ship_city,preferred_locales=l")
        .unwrap()
}

#[test]
fn a_shipping_group_without_its_name_is_withheld_and_keeps_its_base() {
    use super::Withheld;
    let map = shipping_map();
    let agreed = values(&[
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("shipping.name", ""),
        ("shipping.address.city", ""),
        ("preferred_locales", ""),
    ]);
    let local = shipping_sides("", "Oslo", "");
    let held_plan = plan(&map, &read(&local, &agreed, &agreed), Settle::Report, false);
    let held = Verdict::Withheld(Withheld::ShippingWithoutName);
    assert_eq!(verdict(&held_plan, "shipping.address.city"), held);
    assert_eq!(verdict(&held_plan, "shipping.name"), Verdict::Agree);
    assert!(!held_plan.pushes_anything());
    assert_eq!(held_plan.withheld(), vec![Withheld::ShippingWithoutName]);
    assert_eq!(
        held_plan.base, agreed,
        "the base stays, so the next run says it again"
    );
    assert!(held_plan.is_quiet(), "no call and no write for it");

    // With the name, the group goes; the name cleared later holds the group back
    // again (it is never sent half).
    let named = shipping_sides("Ann", "Oslo", "");
    let plan_named = plan(&map, &read(&named, &agreed, &agreed), Settle::Report, false);
    assert_eq!(verdict(&plan_named, "shipping.name"), Verdict::Push);
    assert_eq!(verdict(&plan_named, "shipping.address.city"), Verdict::Push);
    let in_stripe = values(&[
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("shipping.name", "Ann"),
        ("shipping.address.city", "Oslo"),
    ]);
    let unnamed = shipping_sides("", "Bergen", "");
    let cleared = plan(
        &map,
        &read(&unnamed, &in_stripe, &in_stripe),
        Settle::Report,
        true,
    );
    assert_eq!(verdict(&cleared, "shipping.name"), held);
    assert_eq!(verdict(&cleared, "shipping.address.city"), held);
    // Every shipping column emptied: the group is cleared whole, which Stripe takes.
    let emptied = shipping_sides("", "", "");
    let plan_emptied = plan(
        &map,
        &read(&emptied, &in_stripe, &in_stripe),
        Settle::Report,
        false,
    );
    assert_eq!(verdict(&plan_emptied, "shipping.name"), Verdict::Push);
    assert_eq!(
        verdict(&plan_emptied, "shipping.address.city"),
        Verdict::Push
    );
}

#[test]
fn cleared_locales_are_withheld_unless_stripe_holds_none() {
    use super::Withheld;
    let map = shipping_map();
    let with_locales = values(&[
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("preferred_locales", "nb,en"),
    ]);
    let local = shipping_sides("", "", "");
    let plan_cleared = plan(
        &map,
        &read(&local, &with_locales, &with_locales),
        Settle::Report,
        false,
    );
    assert_eq!(
        verdict(&plan_cleared, "preferred_locales"),
        Verdict::Withheld(Withheld::LocalesNotClearable)
    );
    assert_eq!(
        plan_cleared.base["preferred_locales"], "nb,en",
        "the base stays"
    );

    // Both empty, even with --force: nothing to clear, nothing withheld.
    let none = values(&[("name", "Ann"), ("email", "ann@example.com")]);
    let forced = plan(&map, &read(&local, &none, &none), Settle::Report, true);
    assert_eq!(verdict(&forced, "preferred_locales"), Verdict::Agree);
    assert!(forced.withheld().is_empty());
}

#[test]
fn a_create_drops_a_nameless_shipping_group_and_keeps_the_rest() {
    use super::contract::withhold_for_create;
    let mut nameless = values(&[("phone", "1"), ("shipping.address.city", "Oslo")]);
    assert_eq!(
        withhold_for_create(&mut nameless),
        vec![super::Withheld::ShippingWithoutName]
    );
    assert_eq!(nameless, values(&[("phone", "1")]));
    let mut named = values(&[("shipping.name", "Ann"), ("shipping.address.city", "Oslo")]);
    assert!(withhold_for_create(&mut named).is_empty());
    assert_eq!(named.len(), 2);
}

#[test]
fn each_reason_a_plan_withholds_is_said_once_whatever_the_map_s_order() {
    use super::Withheld;
    let map = FieldMap::parse(
        "shipping.name=ship_name,preferred_locales=l,shipping.address.city=ship_city",
    )
    .unwrap();
    let agreed = values(&[
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("shipping.name", "Ann"),
        ("preferred_locales", "nb"),
    ]);
    let local: Vec<Option<String>> = [
        Some("Ann"),
        Some("ann@example.com"),
        None,
        None,
        Some("Oslo"),
    ]
    .iter()
    .map(|v| v.map(str::to_string))
    .collect();
    // The name cleared and the city set (shipping held twice, around the locales).
    let held = plan(&map, &read(&local, &agreed, &agreed), Settle::Report, false);
    assert_eq!(
        held.withheld(),
        vec![Withheld::ShippingWithoutName, Withheld::LocalesNotClearable]
    );
}
