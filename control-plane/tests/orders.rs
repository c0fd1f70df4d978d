//! Buying: the order state machine, who may move it, the durable
//! provisioning job (retries, idempotency, two workers, crash recovery) and
//! resources; on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::Method;
use common::{JOB_ATTEMPTS, TestApp, flow};
use sandflow_control_plane::jobs::{self, Outcome};
use serde_json::{Value, json};
use std::time::Duration;

on_both_stores!(
    owner_orders_skip_consumer_approval,
    member_orders_wait_for_an_owner,
    provider_approval_when_required,
    cancel_and_illegal_moves,
    only_active_offerings_and_live_plans_are_ordered,
    an_offering_paused_while_ordering_takes_no_order,
    approvals_after_a_withdrawal_are_refused,
    a_retried_order_is_placed_once,
    provisioning_retries_then_errs_and_retry_recovers,
    provisioning_twice_makes_one_resource,
    two_workers_never_run_the_same_job,
    running_jobs_are_recovered_on_start,
    a_job_running_past_its_lease_is_claimed_again,
    resources_visibility_and_termination,
    a_pinned_flow_version_is_provisioned,
    only_the_approved_flow_version_is_sold,
    start_recovers_stale_jobs_and_runs_them,
);

fn order_path(order: &Value, verb: &str) -> String {
    format!("/api/orders/{}/{verb}", order["id"].as_str().unwrap())
}

async fn owner_orders_skip_consumer_approval(app: TestApp) {
    let m = app.market(json!({})).await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body).await.expect(201);
    assert_eq!(order["state"], "executing");
    assert_eq!(order["provider_organization_id"], m.provider.as_str());
    assert_eq!(app.count("job").await, 1);
    let ran = app.run_jobs().await;
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].outcome, Outcome::Done);
    let done = app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &m.buyer).await.expect(200);
    assert_eq!(done["state"], "done");
    let resource = done["resource_id"].as_str().unwrap();
    let resource = app.get(&format!("/api/resources/{resource}"), &m.buyer).await.expect(200);
    assert_eq!(resource["state"], "ok");
    assert_eq!(resource["organization_id"], m.consumer.as_str());
    assert!(resource["config_id"].is_string());
    // Both sides list it; nobody else does.
    assert_eq!(app.get("/api/orders/", &m.buyer).await.expect(200).as_array().unwrap().len(), 1);
    assert_eq!(app.get("/api/orders/", &m.seller).await.expect(200).as_array().unwrap().len(), 1);
    assert_eq!(app.get("/api/orders/?state=done", &m.operator).await.expect(200).as_array().unwrap().len(), 1);
    let stranger = app.signup("stranger@example.com").await;
    assert_eq!(app.get("/api/orders/", &stranger).await.expect(200), json!([]));
    app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &stranger).await.refused(404, "not_found");
    app.call(Method::GET, "/api/orders/", None, None).await.refused(401, "unauthorized");
    // Done is final.
    for verb in ["cancel", "retry", "approve_by_consumer", "reject_by_consumer"] {
        app.post(&order_path(&order, verb), &m.buyer, json!({})).await.refused(409, "invalid_transition");
    }
}

async fn member_orders_wait_for_an_owner(app: TestApp) {
    let m = app.market(json!({})).await;
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &member, body.clone()).await.expect(201);
    assert_eq!(order["state"], "pending_consumer");
    assert_eq!(app.count("job").await, 0);
    // The member cannot approve their own order, nor can the provider.
    app.post(&order_path(&order, "approve_by_consumer"), &member, json!({})).await.refused(403, "forbidden");
    app.post(&order_path(&order, "approve_by_consumer"), &m.seller, json!({})).await.refused(403, "forbidden");
    app.post(&order_path(&order, "approve_by_provider"), &m.seller, json!({})).await.refused(409, "invalid_transition");
    let approved = app.post(&order_path(&order, "approve_by_consumer"), &m.buyer, json!({})).await.expect(200);
    assert_eq!(approved["state"], "executing");
    app.post(&order_path(&order, "approve_by_consumer"), &m.buyer, json!({})).await.refused(409, "invalid_transition");
    app.run_jobs().await;

    // Another one rejected by the owner, with a reason.
    let second = app.post("/api/orders/", &member, body).await.expect(201);
    app.post(&order_path(&second, "reject_by_consumer"), &member, json!({})).await.refused(403, "forbidden");
    let rejected = app
        .post(&order_path(&second, "reject_by_consumer"), &m.buyer, json!({"reason": "over budget"}))
        .await
        .expect(200);
    assert_eq!((rejected["state"].as_str(), rejected["reason"].as_str()), (Some("rejected"), Some("over budget")));
    app.post(&order_path(&second, "approve_by_consumer"), &m.buyer, json!({})).await.refused(409, "invalid_transition");
    assert_eq!(app.count("resource").await, 1);
    // Bodies are checked.
    app.post(&order_path(&second, "reject_by_consumer"), &m.buyer, json!({"why": "x"})).await.refused(422, "invalid");
}

async fn provider_approval_when_required(app: TestApp) {
    let m = app.market(json!({"requires_approval": true})).await;
    let provider_member = app.member(&m.seller, &m.provider, "seller-clerk@example.com", "member").await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body.clone()).await.expect(201);
    assert_eq!(order["state"], "pending_provider");
    // The buyer cannot approve for the provider; a plain provider member neither.
    app.post(&order_path(&order, "approve_by_provider"), &m.buyer, json!({})).await.refused(403, "forbidden");
    app.post(&order_path(&order, "approve_by_provider"), &provider_member, json!({})).await.refused(403, "forbidden");
    app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &provider_member).await.expect(200);
    let executing = app.post(&order_path(&order, "approve_by_provider"), &m.seller, json!({})).await.expect(200);
    assert_eq!(executing["state"], "executing");
    app.post(&order_path(&order, "reject_by_provider"), &m.seller, json!({})).await.refused(409, "invalid_transition");
    app.run_jobs().await;
    assert_eq!(
        app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &m.buyer).await.expect(200)["state"],
        "done"
    );

    // Member order: consumer approval first, then the provider's.
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let second = app.post("/api/orders/", &member, body).await.expect(201);
    assert_eq!(second["state"], "pending_consumer");
    let next = app.post(&order_path(&second, "approve_by_consumer"), &m.buyer, json!({})).await.expect(200);
    assert_eq!(next["state"], "pending_provider");
    let reject = order_path(&second, "reject_by_provider");
    let rejected = app.post(&reject, &m.seller, json!({"reason": "not in your region"})).await.expect(200);
    assert_eq!(
        (rejected["state"].as_str(), rejected["reason"].as_str()),
        (Some("rejected"), Some("not in your region"))
    );
    assert_eq!(app.count("resource").await, 1);
}

async fn cancel_and_illegal_moves(app: TestApp) {
    let m = app.market(json!({"requires_approval": true})).await;
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let other = app.member(&m.buyer, &m.consumer, "other@example.com", "member").await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &member, body.clone()).await.expect(201);
    // Another plain member may not cancel someone else's order; the provider neither.
    app.post(&order_path(&order, "cancel"), &other, json!({})).await.refused(403, "forbidden");
    app.post(&order_path(&order, "cancel"), &m.seller, json!({})).await.refused(403, "forbidden");
    let canceled = app.post(&order_path(&order, "cancel"), &member, json!({})).await.expect(200);
    assert_eq!(canceled["state"], "canceled");
    app.post(&order_path(&order, "cancel"), &member, json!({})).await.refused(409, "invalid_transition");
    app.post(&order_path(&order, "retry"), &m.buyer, json!({})).await.refused(409, "invalid_transition");

    // Pending the provider: the owner cancels.
    let second = app.post("/api/orders/", &m.buyer, body).await.expect(201);
    assert_eq!(second["state"], "pending_provider");
    let detail = app.post(&order_path(&second, "retry"), &m.buyer, json!({})).await.refused(409, "invalid_transition");
    assert!(detail.contains("erred"), "{detail}");
    app.post(&order_path(&second, "cancel"), &m.buyer, json!({})).await.expect(200);
    app.post(&order_path(&second, "approve_by_provider"), &m.seller, json!({}))
        .await
        .refused(409, "invalid_transition");
    app.post("/api/orders/nope/cancel", &m.buyer, json!({})).await.refused(404, "not_found");
    assert_eq!(app.count("job").await, 0);
}

async fn only_active_offerings_and_live_plans_are_ordered(app: TestApp) {
    let m = app.market(json!({})).await;
    let stranger = app.signup("stranger@example.com").await;
    // The caller must belong to the ordering organisation.
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    app.post("/api/orders/", &stranger, body.clone()).await.refused(404, "not_found");
    app.call(Method::POST, "/api/orders/", None, Some(body)).await.refused(401, "unauthorized");
    let mine = app.organization(&stranger, "Stranger Inc").await;
    app.post("/api/orders/", &stranger, json!({"plan_id": "nope", "organization_id": mine}))
        .await
        .refused(404, "not_found");
    app.post("/api/orders/", &stranger, json!({"plan_id": m.plan})).await.refused(422, "invalid");
    app.post("/api/orders/", &stranger, json!({"plan_id": m.plan, "organization_id": mine, "qty": 2}))
        .await
        .refused(422, "invalid");

    // A paused offering: outsiders get 404, its provider a 409.
    app.post(&format!("/api/offerings/{}/pause", m.offering), &m.seller, json!({})).await.expect(200);
    let body = json!({"plan_id": m.plan, "organization_id": mine});
    app.post("/api/orders/", &stranger, body.clone()).await.refused(404, "not_found");
    let own = json!({"plan_id": m.plan, "organization_id": m.provider});
    let detail = app.post("/api/orders/", &m.seller, own).await.refused(409, "invalid_transition");
    assert!(detail.contains("paused"), "{detail}");
    app.post(&format!("/api/offerings/{}/resume", m.offering), &m.seller, json!({})).await.expect(200);
    // An archived plan.
    app.post(&format!("/api/plans/{}/archive", m.plan), &m.seller, json!({})).await.expect(200);
    let detail = app.post("/api/orders/", &stranger, body).await.refused(409, "invalid_transition");
    assert!(detail.contains("archived"), "{detail}");
    assert_eq!(app.count("customer_order").await, 0);
}

/// An offering paused between an order's check of the catalog and its
/// insert takes no order: the order (which read the offering as active)
/// waits for the pause to commit and is then refused, rather than placed
/// against plans the seller may now edit.
async fn an_offering_paused_while_ordering_takes_no_order(app: TestApp) {
    let m = app.market(json!({})).await;
    let mut pause = app.db.begin().await.expect("a write transaction");
    sqlx::query("UPDATE offering SET state = 'paused' WHERE id = $1")
        .bind(&m.offering)
        .execute(&mut *pause)
        .await
        .expect("paused, not yet committed");
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body);
    let commit = async {
        // The order has read the offering as active and waits to insert.
        tokio::time::sleep(Duration::from_millis(500)).await;
        pause.commit().await.expect("committed");
    };
    let (answer, ()) = tokio::join!(order, commit);
    // Refused as any order of a paused offering is: to a buyer, it is gone.
    answer.refused(404, "not_found");
    assert_eq!(app.count("customer_order").await, 0, "placed before the pause, it would be here");
}

/// Posts an order with an `Idempotency-Key`.
async fn order_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> common::Answer {
    let request = axum::http::Request::post("/api/orders/")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    app.send(request).await
}

/// A client that retries an order (a timeout, a lost answer) with the same
/// `Idempotency-Key` gets the order it placed, not a second subscription;
/// the key is the ordering organisation's and names one order.
async fn a_retried_order_is_placed_once(app: TestApp) {
    let m = app.market(json!({})).await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let first = order_with_key(&app, &m.buyer, "retry-1", &body).await.expect(201);
    let again = order_with_key(&app, &m.buyer, "retry-1", &body).await.expect(200);
    assert_eq!(again["id"], first["id"]);
    // Still the same after the seller paused the offering (and added a plan).
    app.post(&format!("/api/offerings/{}/pause", m.offering), &m.seller, json!({})).await.expect(200);
    assert_eq!(order_with_key(&app, &m.buyer, "retry-1", &body).await.expect(200)["id"], first["id"]);
    let pro =
        app.post(&format!("/api/offerings/{}/plans", m.offering), &m.seller, json!({"name": "Pro"})).await.expect(201);
    let resumed = app.post(&format!("/api/offerings/{}/resume", m.offering), &m.seller, json!({})).await.expect(200);
    assert_eq!(resumed["state"], "pending_review", "a plan was added while paused");
    app.post(&format!("/api/offerings/{}/approve", m.offering), &m.operator, json!({})).await.expect(200);
    assert_eq!(app.count("customer_order").await, 1);
    assert_eq!(app.count("job").await, 1, "provisioned once");
    // A key reused for another plan is refused; a new key is a new order.
    let pro = json!({"plan_id": pro["id"], "organization_id": m.consumer});
    let detail = order_with_key(&app, &m.buyer, "retry-1", &pro).await.refused(409, "invalid_transition");
    assert!(detail.contains("another plan"), "{detail}");
    order_with_key(&app, &m.buyer, "retry-2", &body).await.expect(201);
    for bad in ["", "a b", &"k".repeat(256)] {
        order_with_key(&app, &m.buyer, bad, &body).await.refused(422, "invalid");
    }
    assert_eq!(app.count("customer_order").await, 2);
}

/// An order placed while its offering was active waits for an approval;
/// if the seller pauses the offering or archives the plan meanwhile, the
/// approval is refused and nothing is provisioned, until it is active again.
async fn approvals_after_a_withdrawal_are_refused(app: TestApp) {
    let m = app.market(json!({})).await;
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let order =
        app.post("/api/orders/", &member, json!({"plan_id": m.plan, "organization_id": m.consumer})).await.expect(201);
    assert_eq!(order["state"], "pending_consumer");
    app.post(&format!("/api/offerings/{}/pause", m.offering), &m.seller, json!({})).await.expect(200);
    let detail = app
        .post(&order_path(&order, "approve_by_consumer"), &m.buyer, json!({}))
        .await
        .refused(409, "invalid_transition");
    assert!(detail.contains("paused"), "{detail}");
    assert_eq!(app.count("job").await, 0, "nothing queued");
    app.post(&format!("/api/offerings/{}/resume", m.offering), &m.seller, json!({})).await.expect(200);
    app.post(&format!("/api/plans/{}/archive", m.plan), &m.seller, json!({})).await.expect(200);
    let detail = app
        .post(&order_path(&order, "approve_by_consumer"), &m.buyer, json!({}))
        .await
        .refused(409, "invalid_transition");
    assert!(detail.contains("archived"), "{detail}");
    assert_eq!(app.count("job").await, 0, "nothing queued");
    assert_eq!(
        app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &m.buyer).await.expect(200)["state"],
        "pending_consumer"
    );
}

/// Forces provisioning to fail (the offering's approval of a flow version
/// is removed behind the API's back), lets the job use up its attempts,
/// then has the offering reviewed again and retries.
async fn provisioning_retries_then_errs_and_retry_recovers(app: TestApp) {
    let m = app.market(json!({})).await;
    sqlx::query("UPDATE offering SET approved_flow_version_id = NULL WHERE id = $1")
        .bind(&m.offering)
        .execute(app.db.pool())
        .await
        .unwrap();
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body).await.expect(201);
    let ran = app.run_jobs().await;
    let outcomes: Vec<&Outcome> = ran.iter().map(|r| &r.outcome).collect();
    assert_eq!(outcomes.len(), JOB_ATTEMPTS as usize, "{outcomes:?}");
    assert!(matches!(outcomes[0], Outcome::Retrying(e) if e.contains("no approved flow version")), "{outcomes:?}");
    assert!(matches!(outcomes.last().unwrap(), Outcome::Failed(_)), "{outcomes:?}");
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    let erred = app.get(&path, &m.buyer).await.expect(200);
    assert_eq!(erred["state"], "erred");
    assert!(erred["error"].as_str().unwrap().contains("no approved flow version"), "{erred}");
    let (state, attempts): (String, i64) =
        sqlx::query_as("SELECT state, attempts FROM job").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("failed", i64::from(JOB_ATTEMPTS)));
    assert_eq!(app.count("resource").await, 0);
    assert_eq!(app.count("runtime_change").await, 0);

    // Only the consumer's owners/admins and operators may retry.
    app.post(&order_path(&erred, "retry"), &m.seller, json!({})).await.refused(403, "forbidden");
    let offering = format!("/api/offerings/{}", m.offering);
    app.post(&format!("{offering}/pause"), &m.seller, json!({})).await.expect(200);
    let resumed = app.post(&format!("{offering}/resume"), &m.seller, json!({})).await.expect(200);
    assert_eq!(resumed["state"], "pending_review", "nothing approved to sell: {resumed}");
    app.post(&format!("{offering}/approve"), &m.operator, json!({})).await.expect(200);
    let retried = app.post(&order_path(&erred, "retry"), &m.operator, json!({})).await.expect(200);
    assert_eq!(retried["state"], "executing");
    app.post(&order_path(&erred, "retry"), &m.buyer, json!({})).await.refused(409, "invalid_transition");
    let ran = app.run_jobs().await;
    assert_eq!(ran.len(), 1);
    let done = app.get(&path, &m.buyer).await.expect(200);
    assert_eq!(done["state"], "done");
    assert_eq!(done["error"], Value::Null);
    assert_eq!(app.count("resource").await, 1);
}

async fn provisioning_twice_makes_one_resource(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let id = order["id"].as_str().unwrap();
    // The same job again, and the handler called directly: nothing new.
    let mut tx = app.db.pool().begin().await.unwrap();
    jobs::enqueue(&mut tx, jobs::PROVISION, &json!({"order_id": id})).await.unwrap();
    tx.commit().await.unwrap();
    let ran = app.run_jobs().await;
    assert_eq!(ran[0].outcome, Outcome::Done);
    sandflow_control_plane::provisioning::provision(&app.state, id).await.unwrap();
    // Even with the order forced back to executing, the resource is not doubled.
    sqlx::query("UPDATE customer_order SET state = 'executing' WHERE id = $1")
        .bind(id)
        .execute(app.db.pool())
        .await
        .unwrap();
    sandflow_control_plane::provisioning::provision(&app.state, id).await.unwrap();
    assert_eq!(app.count("resource").await, 1);
    assert_eq!(app.count("customer_agent_config").await, 1);
    assert_eq!(app.count("runtime_change").await, 1);
    assert_eq!(app.get(&format!("/api/orders/{id}"), &m.buyer).await.expect(200)["state"], "done");
}

async fn two_workers_never_run_the_same_job(app: TestApp) {
    let m = app.market(json!({})).await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let mut orders = Vec::new();
    for _ in 0..6 {
        orders.push(app.post("/api/orders/", &m.buyer, body.clone()).await.expect(201));
    }
    let workers = [jobs::spawn_worker(app.state.clone()), jobs::spawn_worker(app.state.clone())];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customer_order WHERE state = 'done'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        if done == 6 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {done} of 6 orders done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for worker in &workers {
        worker.abort();
    }
    // Each job was claimed exactly once.
    let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM job").fetch_all(app.db.pool()).await.unwrap();
    assert_eq!(attempts, vec![1; 6]);
    assert_eq!(app.count("resource").await, 6);
}

async fn running_jobs_are_recovered_on_start(app: TestApp) {
    let m = app.market(json!({})).await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body).await.expect(201);
    // A process claimed the job and died.
    sqlx::query("UPDATE job SET state = 'running', attempts = 1").execute(app.db.pool()).await.unwrap();
    assert!(app.run_jobs().await.is_empty(), "a running job is not claimed again");
    assert_eq!(jobs::recover(&app.db).await.unwrap(), 1);
    let worker = jobs::spawn_worker(app.state.clone());
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.get(&path, &m.buyer).await.expect(200)["state"] != "done" {
        assert!(tokio::time::Instant::now() < deadline, "the recovered job did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM job").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(attempts, 2);
}

/// A worker that claimed a job and then could not say how it went (the
/// database failed under it, or its replica stalled) leaves it `running`;
/// past its lease any worker takes it again, without a restart.
async fn a_job_running_past_its_lease_is_claimed_again(app: TestApp) {
    let m = app.market(json!({})).await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body).await.expect(201);
    let claimed_at = sandflow_control_plane::db::now_ms() - jobs::LEASE_MS + 60_000;
    sqlx::query("UPDATE job SET state = 'running', attempts = 1, updated_at = $1")
        .bind(claimed_at)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert!(app.run_jobs().await.is_empty(), "within its lease the job is its worker's");
    sqlx::query("UPDATE job SET updated_at = $1").bind(claimed_at - 120_000).execute(app.db.pool()).await.unwrap();
    let ran = app.run_jobs().await;
    assert_eq!(ran.len(), 1, "past its lease the job is claimed again");
    assert_eq!(ran[0].outcome, jobs::Outcome::Done);
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(app.get(&path, &m.buyer).await.expect(200)["state"], "done");
    assert_eq!(app.count("resource").await, 1);
}

async fn resources_visibility_and_termination(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let resource = order["resource_id"].as_str().unwrap().to_owned();
    let path = format!("/api/resources/{resource}");
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let stranger = app.signup("stranger@example.com").await;
    for who in [&m.buyer, &member, &m.seller, &m.operator] {
        app.get(&path, who).await.expect(200);
        assert_eq!(app.get("/api/resources/", who).await.expect(200).as_array().unwrap().len(), 1);
    }
    app.get(&path, &stranger).await.refused(404, "not_found");
    assert_eq!(app.get("/api/resources/", &stranger).await.expect(200), json!([]));
    app.call(Method::GET, "/api/resources/", None, None).await.refused(401, "unauthorized");

    let terminate = format!("{path}/terminate");
    app.post(&terminate, &member, json!({})).await.refused(403, "forbidden");
    app.post(&terminate, &m.seller, json!({})).await.refused(403, "forbidden");
    app.post(&terminate, &stranger, json!({})).await.refused(404, "not_found");
    let terminating = app.post(&terminate, &m.buyer, json!({})).await.expect(200);
    assert_eq!(terminating["state"], "terminating");
    app.post(&terminate, &m.buyer, json!({})).await.refused(409, "invalid_transition");
    app.run_jobs().await;
    assert_eq!(app.get(&path, &m.buyer).await.expect(200)["state"], "terminated");
    let detail = app.post(&terminate, &m.operator, json!({})).await.refused(409, "invalid_transition");
    assert!(detail.contains("terminated"), "{detail}");
}

async fn a_pinned_flow_version_is_provisioned(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let provider = app.provider(&seller, &operator, "Acme").await;
    let agent = app.agent(&seller, &provider, "Echo").await;
    let v1: String = sqlx::query_scalar("SELECT id FROM flow_version WHERE provider_agent_id = $1")
        .bind(&agent)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let (offering, plan) = app.draft_offering(&seller, &provider, &agent, json!({"flow_version_id": v1})).await;
    app.post_bytes(&format!("/api/provider-agents/{agent}/import_flow"), &seller, flow("echo.json")).await.expect(201);
    app.activate(&seller, &operator, &offering).await;
    let buyer = app.signup("buyer@example.com").await;
    let consumer = app.organization(&buyer, "Shop").await;
    let order = app.post("/api/orders/", &buyer, json!({"plan_id": plan, "organization_id": consumer})).await;
    let order = order.expect(201);
    app.run_jobs().await;
    let order = app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &buyer).await.expect(200);
    let resource = app.get(&format!("/api/resources/{}", order["resource_id"].as_str().unwrap()), &buyer).await;
    assert_eq!(resource.expect(200)["flow_version_id"], v1.as_str(), "the pinned version, not the latest");
}

/// The id of the agent's flow version `version`.
async fn version_id(app: &TestApp, agent: &str, version: i64) -> String {
    sqlx::query_scalar("SELECT id FROM flow_version WHERE provider_agent_id = $1 AND version = $2")
        .bind(agent)
        .bind(version)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// Orders the market's plan for a new organisation of the buyer, runs the
/// job and returns the flow version of the resource it made.
async fn provisioned_version(app: &TestApp, m: &common::Market, organization: &str) -> String {
    let consumer = app.organization(&m.buyer, organization).await;
    let order = app.post("/api/orders/", &m.buyer, json!({"plan_id": m.plan, "organization_id": consumer})).await;
    let order = order.expect(201);
    app.run_jobs().await;
    let order = app.get(&format!("/api/orders/{}", order["id"].as_str().unwrap()), &m.buyer).await.expect(200);
    let resource = app.get(&format!("/api/resources/{}", order["resource_id"].as_str().unwrap()), &m.buyer).await;
    resource.expect(200)["flow_version_id"].as_str().unwrap().to_owned()
}

/// An unpinned offering sells the version the operators approved: one
/// imported after the approval, or while a review is pending, waits for
/// the next review.
async fn only_the_approved_flow_version_is_sold(app: TestApp) {
    let m = app.market(json!({})).await;
    let path = format!("/api/offerings/{}", m.offering);
    let import = format!("/api/provider-agents/{}/import_flow", m.agent);
    let v1 = version_id(&app, &m.agent, 1).await;
    let offering = app.get(&path, &m.seller).await.expect(200);
    assert_eq!(offering["approved_flow_version_id"], v1.as_str(), "{offering}");
    assert_eq!(offering["review_flow_version_id"], Value::Null, "{offering}");

    app.post_bytes(&import, &m.seller, flow("echo.json")).await.expect(201);
    let v2 = version_id(&app, &m.agent, 2).await;
    assert_eq!(provisioned_version(&app, &m, "Shop 1").await, v1, "not the version imported after the review");

    // Pausing and resuming puts the newer version up for review...
    app.post(&format!("{path}/pause"), &m.seller, json!({})).await.expect(200);
    let resumed = app.post(&format!("{path}/resume"), &m.seller, json!({})).await.expect(200);
    assert_eq!(resumed["state"], "pending_review", "{resumed}");
    assert_eq!(resumed["review_flow_version_id"], v2.as_str(), "{resumed}");
    assert_eq!(resumed["approved_flow_version_id"], v1.as_str(), "{resumed}");
    // ...and one imported while the review is pending is not what the
    // operators approve.
    app.post_bytes(&import, &m.seller, flow("prompt-echo.json")).await.expect(201);
    let v3 = version_id(&app, &m.agent, 3).await;
    let approved = app.post(&format!("{path}/approve"), &m.operator, json!({})).await.expect(200);
    assert_eq!(approved["approved_flow_version_id"], v2.as_str(), "{approved}");
    assert_eq!(approved["review_flow_version_id"], Value::Null, "{approved}");
    assert_eq!(provisioned_version(&app, &m, "Shop 2").await, v2);

    // A rejected review leaves the approved version as it was.
    app.post(&format!("{path}/pause"), &m.seller, json!({})).await.expect(200);
    let resumed = app.post(&format!("{path}/resume"), &m.seller, json!({})).await.expect(200);
    assert_eq!(resumed["review_flow_version_id"], v3.as_str(), "{resumed}");
    let rejected = app.post(&format!("{path}/reject"), &m.operator, json!({"reason": "v3 leaks"})).await;
    let rejected = rejected.expect(200);
    assert_eq!(rejected["state"], "draft");
    assert_eq!(rejected["review_flow_version_id"], Value::Null, "{rejected}");
    assert_eq!(rejected["approved_flow_version_id"], v2.as_str(), "{rejected}");

    // Pinned to the approved version, it resumes without a new review.
    app.patch(&path, &m.seller, json!({"flow_version_id": v2})).await.expect(200);
    app.post(&format!("{path}/submit"), &m.seller, json!({})).await.expect(200);
    app.post(&format!("{path}/approve"), &m.operator, json!({})).await.expect(200);
    app.post(&format!("{path}/pause"), &m.seller, json!({})).await.expect(200);
    let resumed = app.post(&format!("{path}/resume"), &m.seller, json!({})).await.expect(200);
    assert_eq!(resumed["state"], "active", "{resumed}");
}

/// What `sandflow serve` calls: the router with its worker running, after
/// re-queuing what a dead process left running.
async fn start_recovers_stale_jobs_and_runs_them(app: TestApp) {
    let m = app.market(json!({})).await;
    let body = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let order = app.post("/api/orders/", &m.buyer, body).await.expect(201);
    sqlx::query("UPDATE job SET state = 'running', attempts = 1").execute(app.db.pool()).await.unwrap();
    let (router, worker) = sandflow_control_plane::start(app.state.clone()).await;
    let started = TestApp { router, db: app.db.clone(), state: app.state.clone() };
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while started.get(&path, &m.buyer).await.expect(200)["state"] != "done" {
        assert!(tokio::time::Instant::now() < deadline, "the recovered job did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A later order is run by the same worker.
    let second = json!({"plan_id": m.plan, "organization_id": m.consumer});
    let second = started.post("/api/orders/", &m.buyer, second).await.expect(201);
    let path = format!("/api/orders/{}", second["id"].as_str().unwrap());
    while started.get(&path, &m.buyer).await.expect(200)["state"] != "done" {
        assert!(tokio::time::Instant::now() < deadline, "the worker did not pick up the new job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
}
