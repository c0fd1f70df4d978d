//! The authorisation matrix: every operation of the OpenAPI document ×
//! every kind of caller, against real objects of a seller and a buyer
//! organisation, on SQLite and PostgreSQL.
//!
//! The rule of each operation is stated once, in [`cases`]; an operation
//! the document lists without a rule fails the test, so a new endpoint
//! cannot go unchecked. The API's convention, which the expectations
//! follow:
//! - no (valid) credentials where they are needed: **401**;
//! - an object the caller cannot see (another organisation's): **404**, as
//!   if it did not exist;
//! - an object the caller can see but may not act on (a plain member, an
//!   operator who reads everything, anyone on a public offering): **403**.
//!
//! A refused request must change nothing: every table is compared before
//! and after each refused write. An allowed request must not be refused
//! (2xx, or a 4xx that is not about who is asking, such as the 409 of a
//! state machine): the seeded objects are chosen so that most allowed
//! writes end in such a 409 after the check, and the few that succeed are
//! undone before the next request ([`World::restore`]).
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::Method;
use common::{Answer, PASSWORD, RUNTIME_TOKEN, TestApp, flow};
use sandflow_control_plane::db::Dialect;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::BTreeMap;

on_both_stores_with_documents!(every_operation_refuses_whom_it_must);

/// The buyer's agent secret the world holds, and its value; the seller
/// holds one of the same name for the agent, with its own value.
const SECRET: &str = "AAI_KEY";
const SECRET_VALUE: &str = "aai-value-7f3c9e";
const SELLER_SECRET_VALUE: &str = "aai-seller-2b8d41";

/// A role in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Owner,
    Admin,
    Member,
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No credentials.
    Anonymous,
    /// The runtime hosts' token.
    Runtime,
    /// A staff operator (a member of no organisation here).
    Operator,
    /// In the organisation that sells (the provider).
    Seller(Role),
    /// In the organisation that bought (the consumer).
    Buyer(Role),
    /// In an unrelated organisation (itself an approved provider).
    Foreign(Role),
}

const CALLERS: [Caller; 12] = [
    Caller::Anonymous,
    Caller::Runtime,
    Caller::Operator,
    Caller::Seller(Role::Owner),
    Caller::Seller(Role::Admin),
    Caller::Seller(Role::Member),
    Caller::Buyer(Role::Owner),
    Caller::Buyer(Role::Admin),
    Caller::Buyer(Role::Member),
    Caller::Foreign(Role::Owner),
    Caller::Foreign(Role::Admin),
    Caller::Foreign(Role::Member),
];

/// Who can see the object an operation acts on.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// The seller organisation and its private objects: its members and
    /// operators.
    Seller,
    /// The buyer organisation and its agent configs and keys: its members
    /// and operators.
    Buyer,
    /// An order or resource: members of either party and operators.
    Parties,
    /// An active offering or its live plan: everyone.
    Everyone,
}

impl Seen {
    fn by(self, caller: Caller) -> bool {
        matches!(
            (self, caller),
            (_, Caller::Operator)
                | (Self::Everyone, _)
                | (Self::Seller, Caller::Seller(_))
                | (Self::Buyer, Caller::Buyer(_))
                | (Self::Parties, Caller::Seller(_) | Caller::Buyer(_))
        )
    }
}

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anyone; no credentials are read.
    Public,
    /// Anyone; credentials, when sent, must be a valid session.
    Optional,
    /// Any signed-in user (what they get is filtered to their organisations).
    SignedIn,
    /// Staff operators only.
    Operator,
    /// Runtime hosts only.
    Runtime,
    /// `may`, on an object `seen` says who can see.
    Object { seen: Seen, may: fn(Caller) -> bool, who: &'static str },
}

fn seller_member(c: Caller) -> bool {
    matches!(c, Caller::Seller(_) | Caller::Operator)
}
fn seller_manager(c: Caller) -> bool {
    matches!(c, Caller::Seller(Role::Owner | Role::Admin))
}
fn seller_owner(c: Caller) -> bool {
    c == Caller::Seller(Role::Owner)
}
fn buyer_member(c: Caller) -> bool {
    matches!(c, Caller::Buyer(_))
}
fn buyer_member_or_operator(c: Caller) -> bool {
    matches!(c, Caller::Buyer(_) | Caller::Operator)
}
fn buyer_manager(c: Caller) -> bool {
    matches!(c, Caller::Buyer(Role::Owner | Role::Admin))
}
fn buyer_manager_or_operator(c: Caller) -> bool {
    buyer_manager(c) || c == Caller::Operator
}
fn party(c: Caller) -> bool {
    matches!(c, Caller::Seller(_) | Caller::Buyer(_) | Caller::Operator)
}

const SELLER_READ: Rule =
    Rule::Object { seen: Seen::Seller, may: seller_member, who: "members of the seller, operators" };
const SELLER_MANAGE: Rule =
    Rule::Object { seen: Seen::Seller, may: seller_manager, who: "owners and admins of the seller" };
const SELLER_OWNER: Rule =
    Rule::Object { seen: Seen::Seller, may: seller_owner, who: "the seller's owner (the target is an owner)" };
const OFFERING_MANAGE: Rule = Rule::Object {
    seen: Seen::Everyone,
    may: seller_manager,
    who: "owners and admins of the seller, on its public offering",
};
const BUYER_ORDERS: Rule =
    Rule::Object { seen: Seen::Buyer, may: buyer_member, who: "members of the buyer (for the buyer)" };
const BUYER_READ: Rule =
    Rule::Object { seen: Seen::Buyer, may: buyer_member_or_operator, who: "members of the buyer, operators" };
const BUYER_MANAGE: Rule =
    Rule::Object { seen: Seen::Buyer, may: buyer_manager, who: "owners and admins of the buyer" };
const PARTY_READ: Rule = Rule::Object { seen: Seen::Parties, may: party, who: "members of either party, operators" };
const CONSUMER_DECIDES: Rule =
    Rule::Object { seen: Seen::Parties, may: buyer_manager, who: "owners and admins of the buyer" };
const CONSUMER_OR_OPERATOR: Rule = Rule::Object {
    seen: Seen::Parties,
    may: buyer_manager_or_operator,
    who: "owners and admins of the buyer, operators",
};
const PROVIDER_DECIDES: Rule =
    Rule::Object { seen: Seen::Parties, may: seller_manager, who: "owners and admins of the seller" };

/// What a request should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Not refused: 2xx, or a 4xx that is not about the caller.
    Allowed,
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden,
    /// 404.
    Hidden,
}

impl Rule {
    fn expect(self, caller: Caller) -> Expect {
        match (self, caller) {
            (Self::Public, _) => Expect::Allowed,
            (Self::Runtime, Caller::Runtime) => Expect::Allowed,
            (Self::Runtime, _) => Expect::Unauthenticated,
            (Self::Optional, Caller::Anonymous) => Expect::Allowed,
            (_, Caller::Anonymous | Caller::Runtime) => Expect::Unauthenticated,
            (Self::Optional | Self::SignedIn, _) => Expect::Allowed,
            (Self::Operator, Caller::Operator) => Expect::Allowed,
            (Self::Operator, _) => Expect::Forbidden,
            (Self::Object { seen, may, .. }, caller) => {
                if may(caller) {
                    Expect::Allowed
                } else if seen.by(caller) {
                    Expect::Forbidden
                } else {
                    Expect::Hidden
                }
            }
        }
    }

    /// The security the document must declare for this rule.
    fn security(self) -> Value {
        let user = json!([{ "bearer": [] }, { "session_cookie": [] }]);
        match self {
            Self::Public => json!([{}]),
            Self::Optional => json!([{}, { "bearer": [] }, { "session_cookie": [] }]),
            Self::Runtime => json!([{ "runtime_token": [] }]),
            _ => user,
        }
    }
}

/// A request body.
enum Body {
    None,
    Json(fn(&World) -> Value),
    /// The seller's Langflow export.
    Flow,
    /// A training document for the buyer's agent config, as a multipart form.
    Document,
}

/// One operation: its rule and a request that passes every check but the
/// caller's.
struct Case {
    method: &'static str,
    path: &'static str,
    rule: Rule,
    query: fn(&World) -> String,
    body: Body,
}

fn case(method: &'static str, path: &'static str, rule: Rule, body: Body) -> Case {
    Case { method, path, rule, query: |_| String::new(), body }
}

fn with_query(mut case: Case, query: fn(&World) -> String) -> Case {
    case.query = query;
    case
}

/// The rule table: one entry per operation of the document.
fn cases() -> Vec<Case> {
    use Body::{Document, Flow, Json, None};
    vec![
        // meta
        case("get", "/api/openapi.json", Rule::Public, None),
        case("get", "/api/docs", Rule::Public, None),
        case("get", "/healthz", Rule::Public, None),
        // auth (the second registration of the same email is a 409)
        case(
            "post",
            "/api/auth/register",
            Rule::Public,
            Json(|_| json!({ "email": "newcomer@example.com", "password": PASSWORD, "name": "New" })),
        ),
        case(
            "post",
            "/api/auth/login",
            Rule::Public,
            Json(|_| json!({ "email": "seller@example.com", "password": PASSWORD })),
        ),
        case("post", "/api/auth/logout", Rule::SignedIn, None),
        case("get", "/api/users/me", Rule::SignedIn, None),
        // organisations (the seller's); members and roles aim at its owner,
        // whom only an owner may change and who cannot leave it ownerless
        case("get", "/api/organizations", Rule::SignedIn, None),
        case("post", "/api/organizations", Rule::SignedIn, Json(|_| json!({ "name": "Another" }))),
        case("get", "/api/organizations/{id}", SELLER_READ, None),
        case("get", "/api/organizations/{id}/members", SELLER_READ, None),
        case(
            "post",
            "/api/organizations/{id}/members",
            SELLER_MANAGE,
            Json(|_| json!({ "email": "seller-member@example.com", "role": "member" })),
        ),
        case("patch", "/api/organizations/{id}/members/{user_id}", SELLER_OWNER, Json(|_| json!({ "role": "owner" }))),
        case("delete", "/api/organizations/{id}/members/{user_id}", SELLER_OWNER, None),
        case("get", "/api/organizations/{id}/provider-request", SELLER_READ, None),
        case("post", "/api/organizations/{id}/provider-request", SELLER_MANAGE, Json(|_| json!({}))),
        // operators
        case("get", "/api/admin/provider-requests", Rule::Operator, None),
        case("post", "/api/admin/provider-requests/{id}/approve", Rule::Operator, Json(|_| json!({}))),
        case("post", "/api/admin/provider-requests/{id}/reject", Rule::Operator, Json(|_| json!({ "reason": "no" }))),
        case("get", "/api/admin/settings", Rule::Operator, None),
        case("put", "/api/admin/settings", Rule::Operator, Json(|_| json!({ "commission_bps": 1500 }))),
        case("get", "/api/quotas/{organization_id}", Rule::Operator, None),
        case("put", "/api/quotas/{organization_id}", Rule::Operator, Json(|_| json!({ "runs_per_month": 1000 }))),
        // provider agents (deleting one with versions is a 409)
        with_query(case("get", "/api/provider-agents", SELLER_READ, None), |w| {
            format!("organization={}", w.seller_org)
        }),
        case(
            "post",
            "/api/provider-agents",
            SELLER_MANAGE,
            Json(|w| json!({ "organization": w.seller_org, "name": "Another agent" })),
        ),
        case("post", "/api/provider-agents/validate_flow", Rule::SignedIn, Flow),
        case("get", "/api/provider-agents/{id}", SELLER_READ, None),
        case("patch", "/api/provider-agents/{id}", SELLER_MANAGE, Json(|_| json!({ "description": "Says it back" }))),
        case("delete", "/api/provider-agents/{id}", SELLER_MANAGE, None),
        case("post", "/api/provider-agents/{id}/import_flow", SELLER_MANAGE, Flow),
        case("get", "/api/provider-agents/{id}/versions", SELLER_READ, None),
        case("get", "/api/provider-agents/{id}/versions/{version}", SELLER_READ, None),
        case("get", "/api/provider-agents/{id}/versions/{version}/artifact", SELLER_READ, None),
        case("get", "/api/provider-agents/{id}/stats", SELLER_READ, None),
        case("get", "/api/provider-agents/{id}/secrets", SELLER_MANAGE, None),
        case(
            "put",
            "/api/provider-agents/{id}/secrets/{name}",
            SELLER_MANAGE,
            Json(|_| json!({ "value": SELLER_SECRET_VALUE })),
        ),
        case("delete", "/api/provider-agents/{id}/secrets/{name}", SELLER_MANAGE, None),
        // catalog (the offering is active: changes to it are 409s)
        case("get", "/api/categories", Rule::Public, None),
        case("post", "/api/categories", Rule::Operator, Json(|_| json!({ "name": "Another category" }))),
        case("patch", "/api/categories/{id}", Rule::Operator, Json(|_| json!({ "description": "Bots" }))),
        case("delete", "/api/categories/{id}", Rule::Operator, None),
        with_query(case("get", "/api/offerings", Rule::Optional, None), |w| format!("organization={}", w.seller_org)),
        case(
            "post",
            "/api/offerings",
            SELLER_MANAGE,
            Json(|w| json!({ "organization_id": w.seller_org, "provider_agent_id": w.agent, "name": "Another" })),
        ),
        case("get", "/api/offerings/{id}", Rule::Optional, None),
        case("patch", "/api/offerings/{id}", OFFERING_MANAGE, Json(|_| json!({ "description": "New" }))),
        case("post", "/api/offerings/{id}/submit", OFFERING_MANAGE, None),
        case("post", "/api/offerings/{id}/approve", Rule::Operator, Json(|_| json!({}))),
        case("post", "/api/offerings/{id}/reject", Rule::Operator, Json(|_| json!({ "reason": "no" }))),
        case("post", "/api/offerings/{id}/pause", OFFERING_MANAGE, None),
        case("post", "/api/offerings/{id}/resume", OFFERING_MANAGE, None),
        case("post", "/api/offerings/{id}/archive", OFFERING_MANAGE, None),
        case("get", "/api/offerings/{id}/plans", Rule::Optional, None),
        case("post", "/api/offerings/{id}/plans", OFFERING_MANAGE, Json(|_| json!({ "name": "Gold" }))),
        case("get", "/api/plans/{id}", Rule::Optional, None),
        case("patch", "/api/plans/{id}", OFFERING_MANAGE, Json(|_| json!({ "name": "Basic+" }))),
        case("post", "/api/plans/{id}/archive", OFFERING_MANAGE, Json(|_| json!({}))),
        case("get", "/api/catalog", Rule::Public, None),
        // buying (the order is done: every move is a 409)
        case("get", "/api/orders", Rule::SignedIn, None),
        case(
            "post",
            "/api/orders",
            BUYER_ORDERS,
            Json(|w| json!({ "plan_id": w.plan, "organization_id": w.buyer_org })),
        ),
        case("get", "/api/orders/{id}", PARTY_READ, None),
        case("post", "/api/orders/{id}/approve_by_consumer", CONSUMER_DECIDES, Json(|_| json!({}))),
        case("post", "/api/orders/{id}/reject_by_consumer", CONSUMER_DECIDES, Json(|_| json!({}))),
        case("post", "/api/orders/{id}/approve_by_provider", PROVIDER_DECIDES, Json(|_| json!({}))),
        case("post", "/api/orders/{id}/reject_by_provider", PROVIDER_DECIDES, Json(|_| json!({}))),
        case("post", "/api/orders/{id}/cancel", CONSUMER_DECIDES, Json(|_| json!({}))),
        case("post", "/api/orders/{id}/retry", CONSUMER_OR_OPERATOR, Json(|_| json!({}))),
        case("get", "/api/resources", Rule::SignedIn, None),
        case("get", "/api/resources/{id}", PARTY_READ, None),
        case("post", "/api/resources/{id}/terminate", CONSUMER_OR_OPERATOR, Json(|_| json!({}))),
        // the buyer's agent
        case("get", "/api/customer-agent-configs", Rule::SignedIn, None),
        case("get", "/api/customer-agent-configs/{id}", BUYER_READ, None),
        case(
            "patch",
            "/api/customer-agent-configs/{id}",
            BUYER_MANAGE,
            Json(|_| json!({ "persona": { "name": "Ada", "system_prompt": "Be brief.", "tone": "calm" } })),
        ),
        case("get", "/api/customer-agent-configs/{id}/api_keys", BUYER_MANAGE, None),
        case("post", "/api/customer-agent-configs/{id}/api_keys", BUYER_MANAGE, Json(|_| json!({ "name": "ci" }))),
        case("get", "/api/customer-agent-configs/{id}/secrets", BUYER_MANAGE, None),
        case(
            "put",
            "/api/customer-agent-configs/{id}/secrets/{name}",
            BUYER_MANAGE,
            Json(|_| json!({ "value": SECRET_VALUE })),
        ),
        case("delete", "/api/customer-agent-configs/{id}/secrets/{name}", BUYER_MANAGE, None),
        case("get", "/api/customer-agent-configs/{id}/variables", BUYER_MANAGE, None),
        case("get", "/api/agent-api-keys", Rule::SignedIn, None),
        case("delete", "/api/agent-api-keys/{id}", BUYER_MANAGE, None),
        case("get", "/api/training-documents", Rule::SignedIn, None),
        case("post", "/api/training-documents", BUYER_MANAGE, Document),
        case("get", "/api/training-documents/{id}", BUYER_READ, None),
        case("delete", "/api/training-documents/{id}", BUYER_MANAGE, None),
        case("post", "/api/training-documents/{id}/process", BUYER_MANAGE, Json(|_| json!({}))),
        case("post", "/api/agent-api-keys/{id}/regenerate", BUYER_MANAGE, Json(|_| json!({}))),
        // analytics and the runtime
        with_query(case("get", "/api/analytics/usage", SELLER_READ, None), |w| {
            format!("organization={}&period=2026-11", w.seller_org)
        }),
        case("post", "/api/runtime/usage", Rule::Runtime, Json(|_| json!([]))),
        case("get", "/api/runtime/changes", Rule::Runtime, None),
        case("get", "/api/runtime/artifacts/{digest}", Rule::Runtime, None),
        case("get", "/api/runtime/agents/{id}/secrets", Rule::Runtime, None),
        with_query(case("get", "/api/runtime/usage-totals", Rule::Runtime, None), |_| "month=2026-11".into()),
    ]
}

/// What the test seeded.
struct World {
    seller_org: String,
    seller_owner_id: String,
    provider_request: String,
    agent: String,
    digest: String,
    category: String,
    offering: String,
    plan: String,
    buyer_org: String,
    order: String,
    resource: String,
    config: String,
    key: String,
    document: String,
    /// Email of each user caller, to sign in again after a logout.
    emails: Vec<(Caller, String)>,
    tokens: Vec<(Caller, String)>,
}

impl World {
    async fn seed(app: &TestApp) -> Self {
        let operator = app.operator().await;
        let category = app.post("/api/categories/", &operator, json!({ "name": "Support" })).await.expect(201);
        let category = category["id"].as_str().unwrap().to_owned();
        let m = app.market(json!({ "category_id": category })).await;
        let mut emails = vec![
            (Caller::Operator, "operator@example.com".to_owned()),
            (Caller::Seller(Role::Owner), "seller@example.com".to_owned()),
            (Caller::Buyer(Role::Owner), "buyer@example.com".to_owned()),
            (Caller::Foreign(Role::Owner), "foreign@example.com".to_owned()),
        ];
        let foreign = app.signup("foreign@example.com").await;
        let foreign_org = app.provider(&foreign, &m.operator, "Elsewhere").await;
        for (side, owner, org, name) in [
            (Caller::Seller as fn(Role) -> Caller, &m.seller, &m.provider, "seller"),
            (Caller::Buyer as fn(Role) -> Caller, &m.buyer, &m.consumer, "buyer"),
            (Caller::Foreign as fn(Role) -> Caller, &foreign, &foreign_org, "foreign"),
        ] {
            for (role, label) in [(Role::Admin, "admin"), (Role::Member, "member")] {
                let email = format!("{name}-{label}@example.com");
                app.member(owner, org, &email, label).await;
                emails.push((side(role), email));
            }
        }
        let order = app.provisioned(&m).await;
        let resource = order["resource_id"].as_str().unwrap().to_owned();
        let resource_body = app.get(&format!("/api/resources/{resource}"), &m.buyer).await.expect(200);
        let config = resource_body["config_id"].as_str().unwrap().to_owned();
        let key = app
            .post(&format!("/api/customer-agent-configs/{config}/api_keys"), &m.buyer, json!({ "name": "prod" }))
            .await
            .expect(201);
        let document = app.send(document_upload(&config, Some(&m.buyer))).await.expect(201);
        app.put(
            &format!("/api/customer-agent-configs/{config}/secrets/{SECRET}"),
            &m.buyer,
            json!({ "value": SECRET_VALUE }),
        )
        .await
        .expect(200);
        app.put(
            &format!("/api/provider-agents/{}/secrets/{SECRET}", m.agent),
            &m.seller,
            json!({ "value": SELLER_SECRET_VALUE }),
        )
        .await
        .expect(200);
        // Copies of the document's and the secrets' rows, to put back after an allowed delete.
        for table in ["training_document", "agent_secret", "seller_secret"] {
            sqlx::query(&format!("CREATE TABLE {table}_seed AS SELECT * FROM {table}"))
                .execute(app.db.pool())
                .await
                .unwrap();
        }
        let request =
            app.get(&format!("/api/organizations/{}/provider-request", m.provider), &m.seller).await.expect(200);
        let version = app.get(&format!("/api/provider-agents/{}/versions/1", m.agent), &m.seller).await.expect(200);
        let me = app.get("/api/users/me", &m.seller).await.expect(200);
        let mut world = Self {
            seller_org: m.provider.clone(),
            seller_owner_id: me["id"].as_str().unwrap().to_owned(),
            provider_request: request["id"].as_str().unwrap().to_owned(),
            agent: m.agent.clone(),
            digest: version["digest"].as_str().unwrap().to_owned(),
            category,
            offering: m.offering.clone(),
            plan: m.plan.clone(),
            buyer_org: m.consumer.clone(),
            order: order["id"].as_str().unwrap().to_owned(),
            resource,
            config,
            key: key["id"].as_str().unwrap().to_owned(),
            document: document["id"].as_str().unwrap().to_owned(),
            emails,
            tokens: Vec::new(),
        };
        world.sign_in(app).await;
        world
    }

    /// Fresh sessions for every user caller.
    async fn sign_in(&mut self, app: &TestApp) {
        self.tokens.clear();
        for (caller, email) in &self.emails {
            self.tokens.push((*caller, app.login(email).await));
        }
        self.tokens.push((Caller::Runtime, RUNTIME_TOKEN.to_owned()));
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        self.tokens.iter().find(|(c, _)| *c == caller).map(|(_, t)| t.as_str())
    }

    /// The seeded object a path parameter names, chosen by the path.
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/api/organizations/") {
            &self.seller_org
        } else if path.starts_with("/api/admin/provider-requests/") {
            &self.provider_request
        } else if path.starts_with("/api/provider-agents/") {
            &self.agent
        } else if path.starts_with("/api/categories/") {
            &self.category
        } else if path.starts_with("/api/offerings/") {
            &self.offering
        } else if path.starts_with("/api/plans/") {
            &self.plan
        } else if path.starts_with("/api/orders/") {
            &self.order
        } else if path.starts_with("/api/resources/") || path.starts_with("/api/runtime/agents/") {
            &self.resource
        } else if path.starts_with("/api/customer-agent-configs/") {
            &self.config
        } else if path.starts_with("/api/agent-api-keys/") {
            &self.key
        } else if path.starts_with("/api/training-documents/") {
            &self.document
        } else {
            ""
        };
        path.replace("{id}", id)
            .replace("{user_id}", &self.seller_owner_id)
            .replace("{organization_id}", &self.buyer_org)
            .replace("{version}", "1")
            .replace("{name}", SECRET)
            .replace("{digest}", &self.digest)
    }

    /// What a caller must never find in an answer: other organisations'
    /// orders, subscriptions, configs, keys and provider requests, and the
    /// values of the buyer's and the seller's agent secrets (only the
    /// runtime hosts get them).
    fn secrets(&self, caller: Caller) -> Vec<&str> {
        let buyer_side = [self.config.as_str(), self.key.as_str(), self.document.as_str(), SECRET_VALUE];
        let parties = [self.order.as_str(), self.resource.as_str(), self.buyer_org.as_str()];
        let mut never = match caller {
            Caller::Anonymous | Caller::Foreign(_) => {
                [&buyer_side[..], &parties[..], &[self.provider_request.as_str()]].concat()
            }
            Caller::Seller(_) => buyer_side.to_vec(),
            Caller::Buyer(_) => vec![self.provider_request.as_str(), SECRET_VALUE],
            Caller::Operator => vec![SECRET_VALUE],
            Caller::Runtime => return Vec::new(),
        };
        never.push(SELLER_SECRET_VALUE);
        never
    }

    /// Undoes what allowed requests changed that later requests rely on
    /// (the offering active, its plan live, the subscription ok, its key
    /// valid).
    async fn restore(&self, app: &TestApp) {
        let pool = app.db.pool();
        for (sql, id) in [
            (
                "UPDATE offering SET state = 'active', review_note = NULL, review_flow_version_id = NULL WHERE id = $1",
                &self.offering,
            ),
            ("UPDATE plan SET archived_at = NULL WHERE id = $1", &self.plan),
            ("UPDATE resource SET state = 'ok' WHERE id = $1", &self.resource),
            ("UPDATE agent_api_key SET revoked_at = NULL WHERE id = $1", &self.key),
            (
                "INSERT INTO training_document SELECT * FROM training_document_seed \
                 WHERE id = $1 AND id NOT IN (SELECT id FROM training_document)",
                &self.document,
            ),
            ("DELETE FROM training_document WHERE id NOT IN (SELECT id FROM training_document_seed)", &String::new()),
            (
                "INSERT INTO agent_secret SELECT * FROM agent_secret_seed \
                 WHERE resource_id = $1 AND name NOT IN (SELECT name FROM agent_secret WHERE resource_id = $1)",
                &self.resource,
            ),
            (
                "INSERT INTO seller_secret SELECT * FROM seller_secret_seed WHERE provider_agent_id = $1 \
                 AND name NOT IN (SELECT name FROM seller_secret WHERE provider_agent_id = $1)",
                &self.agent,
            ),
        ] {
            let query = sqlx::query(sql);
            let query = if sql.contains("$1") { query.bind(id) } else { query };
            query.execute(pool).await.unwrap();
        }
    }
}

/// Every row of every table, as text, to compare before and after.
async fn snapshot(app: &TestApp) -> BTreeMap<String, Vec<String>> {
    let pool = app.db.pool();
    let tables: Vec<String> = match app.db.dialect() {
        Dialect::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%' ORDER BY name",
        ),
        Dialect::Postgres => sqlx::query_scalar(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%' ORDER BY table_name",
        ),
    }
    .fetch_all(pool)
    .await
    .unwrap();
    let mut all = BTreeMap::new();
    for table in tables {
        let sql = match app.db.dialect() {
            Dialect::Sqlite => {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || ',' || ");
                format!("SELECT {row} AS r FROM \"{table}\" ORDER BY r")
            }
            Dialect::Postgres => format!("SELECT CAST(t AS TEXT) AS r FROM \"{table}\" t ORDER BY r"),
        };
        let rows = sqlx::query(&sql).fetch_all(pool).await.unwrap();
        let rows = rows.iter().map(|r| r.try_get::<String, _>("r").unwrap()).collect();
        all.insert(table, rows);
    }
    all
}

async fn send(app: &TestApp, world: &World, case: &Case, caller: Caller) -> Answer {
    let mut url = world.fill(case.path);
    let query = (case.query)(world);
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let method = Method::from_bytes(case.method.to_uppercase().as_bytes()).unwrap();
    let token = if caller == Caller::Anonymous { None } else { world.token(caller) };
    match &case.body {
        Body::None => app.call(method, &url, token, None).await,
        Body::Json(body) => app.call(method, &url, token, Some(body(world))).await,
        Body::Document => app.send(document_upload(&world.config, token)).await,
        Body::Flow => {
            let request = axum::http::Request::builder().method(method).uri(&url);
            let request = match token {
                Some(token) => request.header("authorization", format!("Bearer {token}")),
                None => request,
            };
            let request = request
                .header("content-type", "application/json")
                .body(axum::body::Body::from(flow("prompt-echo.json")))
                .unwrap();
            app.send(request).await
        }
    }
}

async fn every_operation_refuses_whom_it_must(app: TestApp) {
    let mut world = World::seed(&app).await;
    let document = app.call(Method::GET, "/api/openapi.json", None, None).await.expect(200);
    let cases = cases();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    // Every operation has a rule and every rule an operation.
    for (path, method, _) in &operations {
        assert!(
            cases.iter().any(|c| c.path == path && c.method == method),
            "{} {path} has no rule: add it to cases() in tests/authorization.rs",
            method.to_uppercase()
        );
    }
    for case in &cases {
        assert!(
            operations.iter().any(|(p, m, _)| p == case.path && m == case.method),
            "cases() has a rule for {} {}, which the document does not list",
            case.method,
            case.path
        );
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (path, method, operation) in &operations {
        let case = cases.iter().find(|c| c.path == path && c.method == method).unwrap();
        let label = format!("{} {path}", method.to_uppercase());
        if operation["security"] != case.rule.security() {
            failures.push(format!(
                "{label}: the document says security {} for rule {:?}",
                operation["security"], case.rule
            ));
        }
        for caller in CALLERS {
            let expected = case.rule.expect(caller);
            let guarded = expected != Expect::Allowed && method != "get";
            let before = if guarded { Some(snapshot(&app).await) } else { None };
            let answer = send(&app, &world, case, caller).await;
            checked += 1;
            let status = answer.status.as_u16();
            let fine = match expected {
                Expect::Allowed => !matches!(status, 401 | 403 | 404) && status < 500,
                Expect::Unauthenticated => status == 401 && answer.body["code"] == "unauthorized",
                Expect::Forbidden => status == 403 && answer.body["code"] == "forbidden",
                Expect::Hidden => status == 404 && answer.body["code"] == "not_found",
            };
            if !fine {
                failures.push(format!(
                    "{label} as {caller:?}: expected {expected:?} ({}), got {status} {}",
                    who(case.rule),
                    answer.body
                ));
            }
            if let Some(before) = before {
                let after = snapshot(&app).await;
                if before != after {
                    let changed: Vec<_> = before.keys().filter(|t| before.get(*t) != after.get(*t)).collect();
                    failures.push(format!("{label} as {caller:?} was refused but changed {changed:?}"));
                }
            }
            if answer.status.is_success() {
                let text = String::from_utf8_lossy(&answer.bytes);
                for secret in world.secrets(caller) {
                    if text.contains(secret) {
                        failures.push(format!("{label} as {caller:?} shows `{secret}`, which is not theirs"));
                    }
                }
            }
            world.restore(&app).await;
        }
        if path == "/api/auth/logout" {
            world.sign_in(&app).await;
        }
    }
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 12 * 70, "only {checked} requests were checked");
}

fn who(rule: Rule) -> &'static str {
    match rule {
        Rule::Public => "anyone",
        Rule::Optional => "anyone; a session if credentials are sent",
        Rule::SignedIn => "anyone signed in",
        Rule::Operator => "operators",
        Rule::Runtime => "runtime hosts",
        Rule::Object { who, .. } => who,
    }
}

/// A small Markdown training document for `config`, as a multipart upload.
fn document_upload(config: &str, token: Option<&str>) -> axum::http::Request<axum::body::Body> {
    const BOUNDARY: &str = "sandflow-authorization-boundary";
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"config_id\"\r\n\r\n{config}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"faq.md\"\r\n\
         Content-Type: text/markdown\r\n\r\n# FAQ\n\nWe open at nine.\r\n--{BOUNDARY}--\r\n"
    );
    let request = axum::http::Request::post("/api/training-documents/")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"));
    let request = match token {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    };
    request.body(axum::body::Body::from(body)).unwrap()
}
