//! Creating a customer exactly once per user, whatever the timing.
//!
//! 1. A conditional UPDATE claims the user row for one attempt (a lease), so a
//!    double click, two tabs or the CLI beside the page cannot create in parallel.
//! 2. The attempt's idempotency key and the parameters it sends are written with the
//!    claim, before Stripe is called. An attempt that was interrupted (timeout,
//!    crash between Stripe's answer and our write) leaves them behind; the next
//!    attempt reuses both, so Stripe answers with the customer it already made.
//! 3. Stripe keeps keys for a day and some stand-ins ignore them, so a resumed
//!    attempt first looks for a customer carrying `metadata.user_id` and links it.

use uuid::Uuid;

use super::settle::name_email_hash;
use super::{CustomerError, Customers, StoredCopy, log_outcome, log_withheld};
use crate::clock::now;
use crate::db::users;
use crate::fields::{StripeField, Values, Withheld, contract, values::local_value};
use crate::stripe::{CustomerLookup, CustomerParams, StripeCustomer};

/// What a create sent, as the row records it once linked.
struct Pushed {
    hash: String,
    /// JSON: every mapped field's value as sent (empty if not sent).
    base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOutcome {
    pub stripe_id: String,
    /// An earlier, interrupted attempt had created the customer; it is linked now.
    pub relinked: bool,
    /// Mapped fields that were set but not sent, and why.
    pub not_sent: Vec<Withheld>,
}

impl CreateOutcome {
    pub fn stripe_id(&self) -> &str {
        &self.stripe_id
    }
}

impl Customers {
    /// Creates the user's Stripe customer with name, email and `metadata.user_id`
    /// and links it. A user who has one already gets `AlreadyHasCustomer`.
    pub async fn create_customer(&self, user_id: i64) -> Result<CreateOutcome, CustomerError> {
        let result = self.create_once(user_id).await;
        log_outcome(user_id, "create customer", &result);
        result
    }

    /// Replaces a linked customer that Stripe no longer has: confirms with Stripe that
    /// it is gone, clears the dead id, then creates a new customer.
    pub async fn recreate_customer(&self, user_id: i64) -> Result<CreateOutcome, CustomerError> {
        let result = async {
            let stripe = self.stripe()?;
            let user = self.user(user_id).await?;
            if let Some(stripe_id) = user.stripe_id {
                match stripe.retrieve_customer(&stripe_id).await? {
                    CustomerLookup::Found(customer) => {
                        self.store_customer(user_id, &customer).await?;
                        return Err(CustomerError::CustomerStillExists { stripe_id });
                    }
                    CustomerLookup::Gone => {
                        users::clear_customer(self.db(), user_id, &stripe_id, now()).await?;
                    }
                }
            }
            self.create_once(user_id).await
        }
        .await;
        log_outcome(user_id, "re-create customer", &result);
        result
    }

    async fn create_once(&self, user_id: i64) -> Result<CreateOutcome, CustomerError> {
        let stripe = self.stripe()?;
        let user = self.user(user_id).await?;
        if let Some(stripe_id) = user.stripe_id {
            return Err(CustomerError::AlreadyHasCustomer { stripe_id });
        }
        let fresh_key = format!("stripe-sync-create-customer-{user_id}-{}", Uuid::new_v4());
        let mut fields = self.local_fields(user_id).await?;
        let not_sent = contract::withhold_for_create(&mut fields);
        let fresh_params = CustomerParams {
            name: user.name,
            email: user.email,
            fields,
        };
        let fresh_params_json = serde_json::to_string(&fresh_params).expect("params serialize");
        let (holder, now_ms, expires_ms) = self.lease_from(now());
        let claim = users::ClaimCreate {
            id: user_id,
            fresh_key: fresh_key.clone(),
            fresh_params: fresh_params_json,
            holder,
            now_ms,
            expires_ms,
        };
        let claim = self.ctx.create_groups.claims.run(claim).await?;
        let Some(claim) = claim else {
            return Err(match self.user(user_id).await?.stripe_id {
                Some(stripe_id) => CustomerError::AlreadyHasCustomer { stripe_id },
                None => CustomerError::CreateInProgress,
            });
        };
        let key = claim.stripe_create_key;
        let resumed = key != fresh_key;
        // The parameters are the ones fixed with the key: Stripe refuses a key reused
        // with different parameters.
        let params: CustomerParams =
            serde_json::from_str(&claim.stripe_create_params).unwrap_or(fresh_params);

        // The key is dropped only when Stripe surely made nothing with it: a create
        // it refused outright, after (on a resumed attempt) a look-up that answered
        // and found no customer naming the user. A look-up that failed (a timeout,
        // a 401 after a key roll) proves nothing, and the key is kept.
        let created = async {
            if resumed {
                tracing::info!(user_id, "resuming an interrupted customer creation");
                match stripe.find_customer_for_user(user_id, &params.email).await {
                    Ok(Some(customer)) => return Ok((customer, true)),
                    Ok(None) => {}
                    Err(failure) => return Err((failure, false)),
                }
            }
            match stripe.create_customer(user_id, &params, &key).await {
                Ok(customer) => Ok((customer, false)),
                Err(failure) => {
                    let proven_absent = failure.is_definitive();
                    Err((failure, proven_absent))
                }
            }
        }
        .await;

        match created {
            Ok((customer, relinked)) => {
                let pushed = Pushed {
                    hash: name_email_hash(&params.name, &params.email),
                    base: self.base_of(&params),
                };
                let stripe_id = self.link(user_id, &key, &customer, &pushed).await?;
                log_withheld(user_id, "create customer", &not_sent);
                Ok(CreateOutcome {
                    stripe_id,
                    relinked,
                    not_sent,
                })
            }
            Err((failure, proven_absent)) => {
                users::release_create(self.db(), user_id, &key, proven_absent).await?;
                Err(failure.into())
            }
        }
    }

    /// The user's mapped fields beyond name and email that have a value (none,
    /// and no read, when the map has no others).
    async fn local_fields(&self, user_id: i64) -> Result<Values, CustomerError> {
        if self.field_map().extra_columns().next().is_none() {
            return Ok(Values::new());
        }
        let row = users::field_row(self.db(), user_id, &self.columns())
            .await?
            .ok_or(CustomerError::UserNotFound(user_id))?;
        Ok(self
            .field_map()
            .mappings()
            .iter()
            .zip(&row.local)
            .filter(|(m, _)| !matches!(m.field, StripeField::Name | StripeField::Email))
            .map(|(m, raw)| (m.field.key(), local_value(&m.field, raw.as_deref())))
            .filter(|(_, value)| !value.is_empty())
            .collect())
    }

    /// The base a create leaves: each mapped field as sent, empty where not sent.
    fn base_of(&self, params: &CustomerParams) -> String {
        let sent = params.values();
        let base: Values = self
            .field_map()
            .mappings()
            .iter()
            .map(|m| {
                let key = m.field.key();
                let value = sent.get(&key).cloned().unwrap_or_default();
                (key, value)
            })
            .collect();
        serde_json::to_string(&base).expect("a base serializes")
    }

    async fn link(
        &self,
        user_id: i64,
        key: &str,
        customer: &StripeCustomer,
        pushed: &Pushed,
    ) -> Result<String, CustomerError> {
        let copy = StoredCopy::of(customer);
        let state = copy.state();
        let stripe_id = customer.id.as_str().to_string();
        let link = users::LinkCustomer {
            id: user_id,
            key: key.to_string(),
            stripe_id: stripe_id.clone(),
            pm_type: state.pm_type.map(str::to_string),
            pm_last_four: state.pm_last_four.map(str::to_string),
            snapshot: state.snapshot.to_string(),
            at: state.at,
            pushed_hash: pushed.hash.clone(),
            base: pushed.base.clone(),
        };
        if !self.ctx.create_groups.links.run(link).await? {
            // Our claim lapsed and another attempt linked the user meanwhile.
            let linked = self.user(user_id).await?.stripe_id.unwrap_or_default();
            return Err(CustomerError::AlreadyHasCustomer { stripe_id: linked });
        }
        Ok(stripe_id)
    }
}
