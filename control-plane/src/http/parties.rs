//! Who a caller is to something that joins a buyer and a seller (an
//! order, a resource): a member of the consumer organisation, of the
//! provider organisation, a staff operator, or nobody (who gets 404).

use super::organizations::{Role, role_in};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};

/// The caller's roles on both sides.
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    /// Role in the consumer (buyer) organisation.
    pub consumer: Option<Role>,
    /// Role in the provider (seller) organisation.
    pub provider: Option<Role>,
    /// Whether the caller is a staff operator.
    pub staff: bool,
}

impl Parties {
    /// The caller's roles in `consumer` and `provider`.
    pub async fn of(state: &AppState, user: &CurrentUser, consumer: &str, provider: &str) -> Result<Self> {
        Ok(Self {
            consumer: role_in(state, &user.id, consumer).await?,
            provider: role_in(state, &user.id, provider).await?,
            staff: user.is_staff,
        })
    }

    /// Whether the caller may see it at all.
    pub fn sees(&self) -> bool {
        self.consumer.is_some() || self.provider.is_some() || self.staff
    }

    /// Whether the caller is an owner or admin of the consumer organisation.
    pub fn consumer_manager(&self) -> bool {
        self.consumer.is_some_and(Role::can_manage)
    }

    /// Whether the caller is an owner or admin of the provider organisation.
    pub fn provider_manager(&self) -> bool {
        self.provider.is_some_and(Role::can_manage)
    }

    /// `Ok` when `allowed`, else a 403 saying who may.
    pub fn require(allowed: bool, who: &str) -> Result<()> {
        if allowed { Ok(()) } else { Err(Error::Forbidden(format!("only {who} may do this"))) }
    }
}
