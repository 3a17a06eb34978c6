//! A field's value on each side: read from Stripe's customer (typed, or a webhook
//! payload) and from a `users` column, in one comparable form.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use stripe_shared::Customer;

use super::map::{AddressPart, StripeField, USER_ID_KEY};

/// Field key (`address.city`) → value. A side read in full holds only its
/// non-empty values: a key it lacks is `""` there.
pub type Values = BTreeMap<String, String>;

/// An address as both the typed customer and a payload give it.
#[derive(Debug, Default, Deserialize)]
struct Address {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

impl Address {
    fn part(&self, part: AddressPart) -> Option<&String> {
        match part {
            AddressPart::Line1 => self.line1.as_ref(),
            AddressPart::Line2 => self.line2.as_ref(),
            AddressPart::City => self.city.as_ref(),
            AddressPart::State => self.state.as_ref(),
            AddressPart::PostalCode => self.postal_code.as_ref(),
            AddressPart::Country => self.country.as_ref(),
        }
    }

    fn of(address: &stripe_shared::Address) -> Self {
        Address {
            line1: address.line1.clone(),
            line2: address.line2.clone(),
            city: address.city.clone(),
            state: address.state.clone(),
            postal_code: address.postal_code.clone(),
            country: address.country.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Shipping {
    name: Option<String>,
    phone: Option<String>,
    address: Option<Address>,
}

/// The syncable fields of a customer object.
#[derive(Debug, Deserialize)]
struct Syncable {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    description: Option<String>,
    preferred_locales: Option<Vec<String>>,
    address: Option<Address>,
    shipping: Option<Shipping>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
}

impl Syncable {
    fn values(self) -> Values {
        let mut values = Values::new();
        let mut put = |field: StripeField, value: Option<&String>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                values.insert(field.key(), value.clone());
            }
        };
        put(StripeField::Name, self.name.as_ref());
        put(StripeField::Email, self.email.as_ref());
        put(StripeField::Phone, self.phone.as_ref());
        put(StripeField::Description, self.description.as_ref());
        let locales = self.preferred_locales.map(|list| list.join(","));
        put(StripeField::PreferredLocales, locales.as_ref());
        let address = self.address.unwrap_or_default();
        let shipping = self.shipping.unwrap_or_default();
        let shipping_address = shipping.address.unwrap_or_default();
        for part in AddressPart::ALL {
            put(StripeField::Address(part), address.part(part));
            put(
                StripeField::ShippingAddress(part),
                shipping_address.part(part),
            );
        }
        put(StripeField::ShippingName, shipping.name.as_ref());
        put(StripeField::ShippingPhone, shipping.phone.as_ref());
        for (key, value) in self.metadata.unwrap_or_default() {
            if key == USER_ID_KEY {
                continue;
            }
            let value = match value {
                Value::String(text) => text,
                Value::Null => continue,
                other => other.to_string(),
            };
            put(StripeField::Metadata(key), Some(&value));
        }
        values
    }
}

/// Every syncable field a customer holds, name and email included.
pub fn of_customer(customer: &Customer) -> Values {
    Syncable {
        name: customer.name.clone(),
        email: customer.email.clone(),
        phone: customer.phone.clone(),
        description: customer.description.clone(),
        preferred_locales: customer.preferred_locales.clone(),
        address: customer.address.as_ref().map(Address::of),
        shipping: customer.shipping.as_ref().map(|shipping| Shipping {
            name: shipping.name.clone(),
            phone: shipping.phone.clone(),
            address: shipping.address.as_ref().map(Address::of),
        }),
        metadata: customer.metadata.as_ref().map(|metadata| {
            metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        }),
    }
    .values()
}

/// The fields a webhook or listed event's customer payload says, when it says
/// them all (each key present, even if null); `None` for a lean payload, which
/// the caller then retrieves.
pub fn of_payload(object: &Value) -> Option<Values> {
    const KEYS: [&str; 7] = [
        "phone",
        "description",
        "preferred_locales",
        "address",
        "shipping",
        "metadata",
        "email",
    ];
    let object_map = object.as_object()?;
    if !KEYS.iter().all(|key| object_map.contains_key(*key)) {
        return None;
    }
    Syncable::deserialize(object).ok().map(Syncable::values)
}

/// A local column's value as compared with Stripe's: NULL is `""`, and a list of
/// locales (comma- or space-separated) is its items joined by commas.
pub fn local_value(field: &StripeField, raw: Option<&str>) -> String {
    let raw = raw.unwrap_or("");
    match field {
        StripeField::PreferredLocales => locales(raw).join(","),
        _ => raw.to_string(),
    }
}

/// The items of a locale list, in order.
pub fn locales(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}
