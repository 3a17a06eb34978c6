//! Carrying out the three-way merge of [`crate::fields`] on stored users: reading
//! a user's three sides, and settling what a new copy of the customer says
//! (pulls into the local columns, the base moving where the sides agree). Every
//! path that stores a copy read from Stripe (a retrieve, a list page, a webhook
//! or replayed event, the answer to a push) settles it in the same transaction.

use super::snapshot::{CustomerSnapshot, Snapshot};
use super::{CustomerError, Customers};
use crate::clock::now;
use crate::db::{self, users, users::FieldRow};
use crate::fields::merge::{self, Plan, Settle, Sides};
use crate::fields::{FieldMap, Values};
use crate::stripe::CustomerParams;

/// A user's stored sides, parsed.
pub(crate) struct Stored {
    customer: Option<CustomerSnapshot>,
    base: Option<Values>,
    pushed_matches_local: bool,
}

impl Stored {
    pub(crate) fn of(row: &FieldRow) -> Self {
        let customer = match row.stripe_snapshot.as_deref().and_then(Snapshot::from_json) {
            Some(Snapshot::Present(customer)) => Some(*customer),
            _ => None,
        };
        let base = row
            .stripe_base
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        let local = |index: usize| row.local.get(index).cloned().flatten().unwrap_or_default();
        let pushed_matches_local = row.stripe_synced_hash.as_deref()
            == Some(name_email_hash(&local(0), &local(1)).as_str());
        Stored {
            customer,
            base,
            pushed_matches_local,
        }
    }

    /// Stripe's side as last read: every field, or (a copy from before fields
    /// were kept) name and email only.
    pub(crate) fn stripe_values(&self) -> Values {
        let Some(customer) = &self.customer else {
            return Values::new();
        };
        if let Some(fields) = &customer.fields {
            return fields.clone();
        }
        let mut values = Values::new();
        for (key, value) in [("name", &customer.name), ("email", &customer.email)] {
            if let Some(value) = value {
                values.insert(key.into(), value.clone());
            }
        }
        values
    }

    fn sides<'a>(&'a self, row: &'a FieldRow) -> Sides<'a> {
        let customer = self.customer.as_ref();
        Sides {
            local: &row.local,
            stripe: customer.and_then(|c| c.fields.as_ref()),
            stripe_name_email: customer.map(|c| {
                (
                    c.name.as_deref().unwrap_or_default(),
                    c.email.as_deref().unwrap_or_default(),
                )
            }),
            base: self.base.as_ref(),
            pushed_matches_local: self.pushed_matches_local,
        }
    }
}

/// The hash of a name and email as pushed (`stripe_synced_hash`), which decides
/// the base of users from before bases were kept.
pub(crate) fn name_email_hash(name: &str, email: &str) -> String {
    super::payload_hash(&CustomerParams {
        name: name.to_string(),
        email: email.to_string(),
        fields: Default::default(),
    })
}

impl Customers {
    pub fn field_map(&self) -> &FieldMap {
        &self.ctx.fields
    }

    /// The map's columns, in its order.
    pub(crate) fn columns(&self) -> Vec<&str> {
        self.ctx
            .fields
            .mappings()
            .iter()
            .map(|m| m.column.as_str())
            .collect()
    }

    pub(crate) fn plan_row(&self, row: &FieldRow, settle: Settle<'_>, force: bool) -> Plan {
        let stored = Stored::of(row);
        merge::plan(&self.ctx.fields, &stored.sides(row), settle, force)
    }

    /// Each synced field of the user, local beside Stripe's, as the page shows
    /// them. With only name and email synced, the row read already says it all.
    pub async fn field_plan(&self, user: &users::User) -> Result<Plan, CustomerError> {
        let row = match self.ctx.fields.extra_columns().next() {
            None => FieldRow::of_user(user),
            Some(_) => users::field_row(self.db(), user.id, &self.columns())
                .await?
                .ok_or(CustomerError::UserNotFound(user.id))?,
        };
        Ok(self.plan_row(&row, Settle::Report, false))
    }

    /// Settles the copy of the customer just stored for the user (still linked to
    /// `stripe_id`): Stripe's edits land in the local columns, agreements move
    /// the base. Nothing is pushed. Returns the fields pulled.
    pub(crate) async fn settle_in(
        &self,
        tx: &mut db::Tx,
        user_id: i64,
        stripe_id: &str,
    ) -> Result<Vec<String>, CustomerError> {
        let Some(row) = users::field_row_in(tx, user_id, &self.columns()).await? else {
            return Ok(Vec::new());
        };
        if row.stripe_id.as_deref() != Some(stripe_id) {
            return Ok(Vec::new());
        }
        let plan = self.plan_row(&row, Settle::Report, false);
        self.store_plan_in(tx, &row, stripe_id, &plan).await
    }

    /// Stores `copy` of the customer for `user`, read and held in `tx`, and
    /// settles it, as a store followed by [`Customers::settle_in`] does. With only
    /// name and email mapped, the row read already says all three sides, and the
    /// copy, the pulls and the base go in one statement. Returns whether the copy
    /// was stored (not when an event newer than `event_created` was applied).
    pub(crate) async fn store_settled_held_in(
        &self,
        tx: &mut db::Tx,
        user: &users::User,
        stripe_id: &str,
        copy: users::CustomerCopy<'_>,
    ) -> Result<bool, CustomerError> {
        if self.ctx.fields.extra_columns().next().is_some()
            || user.stripe_id.as_deref() != Some(stripe_id)
        {
            let stored =
                users::store_customer_state(tx, user.id, stripe_id, copy.state, copy.event_created)
                    .await?;
            if stored {
                self.settle_in(tx, user.id, stripe_id).await?;
            }
            return Ok(stored);
        }
        let mut row = FieldRow::of_user(user);
        row.stripe_snapshot = Some(copy.state.snapshot.to_string());
        let plan = self.plan_row(&row, Settle::Report, false);
        let (base, moves) = plan.base_without_push();
        let pulls = pulls_of(&plan, &row);
        let base = (moves || !pulls.is_empty())
            .then(|| serde_json::to_string(&base).expect("a base serializes"));
        let stored = users::store_copy_in(
            tx,
            user.id,
            stripe_id,
            &copy,
            &pulls,
            base.as_deref(),
            now(),
        )
        .await?;
        if stored && !pulls.is_empty() {
            let pulled: Vec<String> = plan.pulls().map(|f| f.field.key()).collect();
            tracing::info!(user_id = user.id, fields = ?pulled, "fields changed in Stripe pulled");
        }
        Ok(stored)
    }

    /// Writes what `plan` does without a push: its pulls and its base. Returns
    /// the fields pulled (none when a pulled column changed meanwhile).
    pub(crate) async fn store_plan_in(
        &self,
        tx: &mut db::Tx,
        row: &FieldRow,
        stripe_id: &str,
        plan: &Plan,
    ) -> Result<Vec<String>, CustomerError> {
        let (base, moves) = plan.base_without_push();
        let pulls = pulls_of(plan, row);
        if pulls.is_empty() && !moves {
            return Ok(Vec::new());
        }
        let base = serde_json::to_string(&base).expect("a base serializes");
        let stored = users::store_fields_in(tx, row.id, stripe_id, &pulls, &base, now()).await?;
        let pulled: Vec<String> = match stored {
            true => plan.pulls().map(|f| f.field.key()).collect(),
            false => Vec::new(),
        };
        if !pulled.is_empty() {
            tracing::info!(user_id = row.id, fields = ?pulled, "fields changed in Stripe pulled");
        }
        Ok(pulled)
    }
}

/// What `plan` pulls into `row`'s columns, each with the value it was read with.
fn pulls_of<'a>(plan: &'a Plan, row: &'a FieldRow) -> Vec<users::Pull<'a>> {
    plan.fields
        .iter()
        .zip(&row.local)
        .filter(|(field, _)| field.verdict == merge::Verdict::Pull)
        .map(|(field, read)| users::Pull {
            column: &field.column,
            value: field.stripe.as_deref().unwrap_or_default(),
            not_null: field.not_null,
            read: read.as_deref(),
        })
        .collect()
}
