//! The catalog side of the marketplace: categories, offerings and their
//! state machine, plans, and the public catalog; on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::Method;
use common::TestApp;
use serde_json::{Value, json};

on_both_stores!(
    categories_are_operator_managed,
    offering_state_machine,
    offering_roles_and_visibility,
    plans_are_checked_and_archived,
    catalog_lists_active_offerings,
    lists_come_in_pages,
);

async fn categories_are_operator_managed(app: TestApp) {
    let operator = app.operator().await;
    let user = app.signup("ada@example.com").await;
    // Anyone reads, even anonymously.
    let empty = app.call(Method::GET, "/api/categories/", None, None).await.expect(200);
    assert_eq!(empty, json!([]));
    app.call(Method::POST, "/api/categories/", None, Some(json!({"name": "Support"})))
        .await
        .refused(401, "unauthorized");
    app.post("/api/categories/", &user, json!({"name": "Support"})).await.refused(403, "forbidden");

    let support = app.post("/api/categories/", &operator, json!({"name": "Customer Support!"})).await.expect(201);
    assert_eq!(support["slug"], "customer-support");
    let id = support["id"].as_str().unwrap().to_owned();
    let sales = app
        .post("/api/categories/", &operator, json!({"name": "Sales", "slug": "sales", "description": "Leads"}))
        .await
        .expect(201);
    assert_eq!(sales["description"], "Leads");
    let detail = app
        .post("/api/categories/", &operator, json!({"name": "Other", "slug": "sales"}))
        .await
        .refused(409, "conflict");
    assert!(detail.contains("slug"), "{detail}");
    app.post("/api/categories/", &operator, json!({"name": "Bad", "slug": "Not A Slug"})).await.refused(422, "invalid");
    app.post("/api/categories/", &operator, json!({"name": "X", "colour": "red"})).await.refused(422, "invalid");
    app.post("/api/categories/", &operator, json!({"name": 7})).await.refused(422, "invalid");

    let listed = app.call(Method::GET, "/api/categories", None, None).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let path = format!("/api/categories/{id}");
    app.patch(&path, &user, json!({"name": "Help"})).await.refused(403, "forbidden");
    let renamed = app.patch(&path, &operator, json!({"name": "Help", "slug": "help"})).await.expect(200);
    assert_eq!((renamed["name"].as_str(), renamed["slug"].as_str()), (Some("Help"), Some("help")));
    app.patch("/api/categories/nope", &operator, json!({"name": "x"})).await.refused(404, "not_found");

    // A category in use cannot be deleted.
    let seller = app.signup("seller@example.com").await;
    let org = app.provider(&seller, &operator, "Acme").await;
    let agent = app.agent(&seller, &org, "Echo").await;
    app.draft_offering(&seller, &org, &agent, json!({"category_id": id})).await;
    let detail = app.delete(&path, &operator).await.refused(409, "invalid_transition");
    assert!(detail.contains("offerings use"), "{detail}");
    app.delete(&path, &user).await.refused(403, "forbidden");
    app.delete(&format!("/api/categories/{}", sales["id"].as_str().unwrap()), &operator).await.expect(204);
    app.delete("/api/categories/nope", &operator).await.refused(404, "not_found");
    assert_eq!(app.count("category").await, 1);
}

async fn offering_state_machine(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let org = app.provider(&seller, &operator, "Acme").await;
    // An agent without a flow version cannot be submitted.
    let bare =
        app.post("/api/provider-agents/", &seller, json!({"organization": org, "name": "Bare"})).await.expect(201);
    let bare = bare["id"].as_str().unwrap();
    let body = json!({"organization_id": org, "provider_agent_id": bare, "name": "Bare offering"});
    let offering = app.post("/api/offerings/", &seller, body).await.expect(201);
    assert_eq!(offering["state"], "draft");
    assert_eq!(offering["requires_approval"], false);
    let id = offering["id"].as_str().unwrap().to_owned();
    let act = |verb: &str| format!("/api/offerings/{id}/{verb}");
    let detail = app.post(&act("submit"), &seller, json!({})).await.refused(409, "invalid_transition");
    assert!(detail.contains("no plan"), "{detail}");
    app.post(&format!("/api/offerings/{id}/plans"), &seller, json!({"name": "Basic"})).await.expect(201);
    let detail = app.post(&act("submit"), &seller, json!({})).await.refused(409, "invalid_transition");
    assert!(detail.contains("no flow version"), "{detail}");
    // A refused submit changed nothing.
    assert_eq!(app.get(&format!("/api/offerings/{id}"), &seller).await.expect(200)["state"], "draft");

    let agent = app.agent(&seller, &org, "Echo").await;
    let (id, _plan) = app.draft_offering(&seller, &org, &agent, json!({})).await;
    let act = |verb: &str| format!("/api/offerings/{id}/{verb}");
    // Only draft → pending_review → active; each illegal move is a 409.
    for verb in ["approve", "pause", "resume"] {
        let who = if verb == "approve" { &operator } else { &seller };
        let detail = app.post(&act(verb), who, json!({})).await.refused(409, "invalid_transition");
        assert!(detail.contains("draft"), "{verb}: {detail}");
    }
    app.post(&act("reject"), &operator, json!({"reason": "no"})).await.refused(409, "invalid_transition");
    let pending = app.post(&act("submit"), &seller, json!({})).await.expect(200);
    assert_eq!(pending["state"], "pending_review");
    app.post(&act("submit"), &seller, json!({})).await.refused(409, "invalid_transition");
    // PATCH only in draft or paused.
    app.patch(&format!("/api/offerings/{id}"), &seller, json!({"name": "New"}))
        .await
        .refused(409, "invalid_transition");
    // The operator sends it back with a reason (which is required).
    app.post(&act("reject"), &operator, json!({})).await.refused(422, "invalid");
    let draft = app.post(&act("reject"), &operator, json!({"reason": "describe it better"})).await.expect(200);
    assert_eq!((draft["state"].as_str(), draft["review_note"].as_str()), (Some("draft"), Some("describe it better")));
    let path = format!("/api/offerings/{id}");
    let edited =
        app.patch(&path, &seller, json!({"description": "Better", "requires_approval": true})).await.expect(200);
    assert_eq!((edited["description"].as_str(), edited["requires_approval"].as_bool()), (Some("Better"), Some(true)));
    app.post(&act("submit"), &seller, json!({})).await.expect(200);
    let active = app.post(&act("approve"), &operator, json!({})).await.expect(200);
    assert_eq!(active["state"], "active");
    assert_eq!(active["review_note"], Value::Null);
    // Active cannot be archived directly, nor changed.
    app.post(&act("archive"), &seller, json!({})).await.refused(409, "invalid_transition");
    app.post(&act("resume"), &seller, json!({})).await.refused(409, "invalid_transition");
    app.patch(&format!("/api/offerings/{id}"), &seller, json!({"name": "x"})).await.refused(409, "invalid_transition");
    assert_eq!(app.post(&act("pause"), &seller, json!({})).await.expect(200)["state"], "paused");
    app.post(&act("pause"), &seller, json!({})).await.refused(409, "invalid_transition");
    // Resuming unchanged needs no review.
    assert_eq!(app.post(&act("resume"), &seller, json!({})).await.expect(200)["state"], "active");
    app.post(&act("pause"), &seller, json!({})).await.expect(200);
    // Changed while paused, it goes back to the operators: pausing is no
    // way around review.
    let renamed = app.patch(&format!("/api/offerings/{id}"), &seller, json!({"name": "Echo Max"})).await.expect(200);
    assert_eq!(renamed["name"], "Echo Max");
    assert_eq!(app.post(&act("resume"), &seller, json!({})).await.expect(200)["state"], "pending_review");
    let catalog = app.call(Method::GET, "/api/catalog/", None, None).await.expect(200);
    assert!(!catalog.to_string().contains("Echo Max"), "{catalog}");
    assert_eq!(app.post(&act("approve"), &operator, json!({})).await.expect(200)["state"], "active");
    // So does a plan added, or changed, while paused; approval starts over.
    app.post(&act("pause"), &seller, json!({})).await.expect(200);
    assert_eq!(app.post(&act("resume"), &seller, json!({})).await.expect(200)["state"], "active");
    app.post(&act("pause"), &seller, json!({})).await.expect(200);
    let pro = app.post(&act("plans"), &seller, json!({"name": "Pro", "per_run": 1})).await.expect(201);
    assert_eq!(app.post(&act("resume"), &seller, json!({})).await.expect(200)["state"], "pending_review");
    app.post(&act("approve"), &operator, json!({})).await.expect(200);
    app.post(&act("pause"), &seller, json!({})).await.expect(200);
    let plan = format!("/api/plans/{}", pro["id"].as_str().unwrap());
    app.patch(&plan, &seller, json!({"per_run": 999_999})).await.expect(200);
    assert_eq!(app.post(&act("resume"), &seller, json!({})).await.expect(200)["state"], "pending_review");
    // While it waits for review, neither it nor its plans change.
    app.patch(&plan, &seller, json!({"per_run": 5})).await.refused(409, "invalid_transition");
    app.post(&act("approve"), &operator, json!({})).await.expect(200);
    app.post(&act("pause"), &seller, json!({})).await.expect(200);
    assert_eq!(app.post(&act("archive"), &seller, json!({})).await.expect(200)["state"], "archived");
    // Archived is for good.
    for verb in ["submit", "resume", "pause", "archive"] {
        app.post(&act(verb), &seller, json!({})).await.refused(409, "invalid_transition");
    }
    app.post(&act("approve"), &operator, json!({})).await.refused(409, "invalid_transition");
    app.post("/api/offerings/nope/submit", &seller, json!({})).await.refused(404, "not_found");
}

async fn offering_roles_and_visibility(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let org = app.provider(&seller, &operator, "Acme").await;
    let member = app.member(&seller, &org, "member@example.com", "member").await;
    let stranger = app.signup("stranger@example.com").await;
    let agent = app.agent(&seller, &org, "Echo").await;

    // Writing needs an owner or admin of an approved provider.
    let body = json!({"organization_id": org, "provider_agent_id": agent, "name": "Mine"});
    app.post("/api/offerings/", &member, body.clone()).await.refused(403, "forbidden");
    app.post("/api/offerings/", &stranger, body.clone()).await.refused(404, "not_found");
    app.call(Method::POST, "/api/offerings/", None, Some(body)).await.refused(401, "unauthorized");
    let not_provider = app.organization(&stranger, "Nope").await;
    let body = json!({"organization_id": not_provider, "provider_agent_id": agent, "name": "x"});
    app.post("/api/offerings/", &stranger, body).await.refused(403, "forbidden");
    // References are checked.
    let other_seller = app.signup("other@example.com").await;
    let other_org = app.provider(&other_seller, &operator, "Other").await;
    let body = json!({"organization_id": other_org, "provider_agent_id": agent, "name": "Stolen"});
    let detail = app.post("/api/offerings/", &other_seller, body).await.refused(422, "invalid");
    assert!(detail.contains("provider_agent_id"), "{detail}");
    let body = json!({"organization_id": org, "provider_agent_id": agent, "name": "x", "flow_version_id": "nope"});
    app.post("/api/offerings/", &seller, body).await.refused(422, "invalid");
    let body = json!({"organization_id": org, "provider_agent_id": agent, "name": "x", "category_id": "nope"});
    app.post("/api/offerings/", &seller, body).await.refused(422, "invalid");
    let body = json!({"organization_id": org, "provider_agent_id": agent, "name": "x", "requires_approval": "yes"});
    app.post("/api/offerings/", &seller, body).await.refused(422, "invalid");
    let body = json!({"organization_id": org, "provider_agent_id": agent, "name": "x", "price": 5});
    app.post("/api/offerings/", &seller, body).await.refused(422, "invalid");

    let (id, _) = app.draft_offering(&seller, &org, &agent, json!({})).await;
    let path = format!("/api/offerings/{id}");
    // A draft is seen by its provider (members too) and operators only.
    app.get(&path, &member).await.expect(200);
    app.get(&path, &operator).await.expect(200);
    app.get(&path, &stranger).await.refused(404, "not_found");
    app.call(Method::GET, &path, None, None).await.refused(404, "not_found");
    app.patch(&path, &member, json!({"name": "x"})).await.refused(403, "forbidden");
    app.patch(&path, &stranger, json!({"name": "x"})).await.refused(404, "not_found");
    app.patch(&path, &seller, json!({"name": ""})).await.refused(422, "invalid");
    app.post(&format!("{path}/submit"), &member, json!({})).await.refused(403, "forbidden");
    app.post(&format!("{path}/submit"), &seller, json!({})).await.expect(200);
    // Only operators review.
    app.post(&format!("{path}/approve"), &seller, json!({})).await.refused(403, "forbidden");
    app.post(&format!("{path}/reject"), &seller, json!({"reason": "x"})).await.refused(403, "forbidden");
    assert_eq!(app.call(Method::GET, "/api/offerings/", None, None).await.expect(200), json!([]));
    assert_eq!(app.get("/api/offerings/", &operator).await.expect(200).as_array().unwrap().len(), 1);
    app.post(&format!("{path}/approve"), &operator, json!({})).await.expect(200);
    // Active: everyone sees it, strangers still cannot change it.
    app.get(&path, &stranger).await.expect(200);
    app.call(Method::GET, &path, None, None).await.expect(200);
    assert_eq!(app.get("/api/offerings/", &stranger).await.expect(200).as_array().unwrap().len(), 1);
    app.post(&format!("{path}/pause"), &stranger, json!({})).await.refused(403, "forbidden");
    app.post(&format!("{path}/pause"), &member, json!({})).await.refused(403, "forbidden");
    app.post(&format!("{path}/pause"), &operator, json!({})).await.refused(403, "forbidden");
    let listed = app.get(&format!("/api/offerings/?organization={org}&state=active"), &stranger).await.expect(200);
    assert_eq!(listed[0]["id"], id.as_str());
}

async fn plans_are_checked_and_archived(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let org = app.provider(&seller, &operator, "Acme").await;
    let member = app.member(&seller, &org, "member@example.com", "member").await;
    let agent = app.agent(&seller, &org, "Echo").await;
    let (offering, plan) = app.draft_offering(&seller, &org, &agent, json!({})).await;
    let plans = format!("/api/offerings/{offering}/plans");

    let full = app
        .post(
            &plans,
            &seller,
            json!({"name": "Pro", "currency": "EUR", "fixed_monthly": 9900, "per_run": 1, "per_1k_tokens": 30,
                   "per_million_fuel": 5, "runs_per_month": null, "tokens_per_month": 1000000,
                   "fuel_per_month": 5000000000i64, "requests_per_minute": 600}),
        )
        .await
        .expect(201);
    assert_eq!(full["currency"], "eur");
    assert_eq!(full["runs_per_month"], Value::Null);
    assert_eq!(full["fuel_per_month"], 5_000_000_000i64);
    let minimal = app.post(&plans, &seller, json!({"name": "Free"})).await.expect(201);
    assert_eq!((minimal["currency"].as_str(), minimal["per_run"].as_i64()), (Some("usd"), Some(0)));

    for bad in [
        json!({}),
        json!({"name": "x", "per_run": -1}),
        json!({"name": "x", "currency": "dollars"}),
        json!({"name": "x", "currency": "u1d"}),
        json!({"name": "x", "requests_per_minute": 0}),
        json!({"name": "x", "runs_per_month": -5}),
        json!({"name": "x", "per_run": "1"}),
        json!({"name": "x", "per_run": 1.5}),
        json!({"name": "x", "discount": 3}),
    ] {
        app.post(&plans, &seller, bad.clone()).await.refused(422, "invalid");
    }
    app.post(&plans, &member, json!({"name": "x"})).await.refused(403, "forbidden");

    let path = format!("/api/plans/{plan}");
    let changed = app.patch(&path, &seller, json!({"per_run": 3, "runs_per_month": null})).await.expect(200);
    assert_eq!((changed["per_run"].as_i64(), changed["runs_per_month"].clone()), (Some(3), Value::Null));
    assert_eq!(changed["fixed_monthly"], 1900);
    app.patch(&path, &member, json!({"per_run": 4})).await.refused(403, "forbidden");
    app.patch(&path, &seller, json!({"per_run": -4})).await.refused(422, "invalid");

    app.activate(&seller, &operator, &offering).await;
    // Active offerings' plans are fixed; new ones wait for a pause.
    app.patch(&path, &seller, json!({"per_run": 4})).await.refused(409, "invalid_transition");
    app.post(&plans, &seller, json!({"name": "Later"})).await.refused(409, "invalid_transition");

    let stranger = app.signup("stranger@example.com").await;
    assert_eq!(app.get(&plans, &stranger).await.expect(200).as_array().unwrap().len(), 3);
    let archive = format!("/api/plans/{}/archive", minimal["id"].as_str().unwrap());
    app.post(&archive, &member, json!({})).await.refused(403, "forbidden");
    let archived = app.post(&archive, &seller, json!({})).await.expect(200);
    assert_eq!(archived["archived"], true);
    app.post(&archive, &seller, json!({})).await.refused(409, "invalid_transition");
    // The public no longer sees it; the provider does.
    assert_eq!(app.call(Method::GET, &plans, None, None).await.expect(200).as_array().unwrap().len(), 2);
    assert_eq!(app.get(&plans, &seller).await.expect(200).as_array().unwrap().len(), 3);
    app.get(&format!("/api/plans/{}", minimal["id"].as_str().unwrap()), &stranger).await.refused(404, "not_found");
}

async fn catalog_lists_active_offerings(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let org = app.provider(&seller, &operator, "Acme").await;
    let agent = app.agent(&seller, &org, "Echo").await;
    let support = app.post("/api/categories/", &operator, json!({"name": "Support"})).await.expect(201);
    let support_id = support["id"].as_str().unwrap();
    let sales = app.post("/api/categories/", &operator, json!({"name": "Sales"})).await.expect(201);

    let (helpdesk, _) = app
        .draft_offering(
            &seller,
            &org,
            &agent,
            json!({"name": "HelpDesk Bot", "description": "Answers 100% of tickets", "category_id": support_id}),
        )
        .await;
    app.activate(&seller, &operator, &helpdesk).await;
    let (closer, _) =
        app.draft_offering(&seller, &org, &agent, json!({"name": "Closer", "category_id": sales["id"]})).await;
    app.activate(&seller, &operator, &closer).await;
    // Drafts and paused offerings are not in the catalog.
    app.draft_offering(&seller, &org, &agent, json!({"name": "Unfinished", "category_id": support_id})).await;

    let all = app.call(Method::GET, "/api/catalog/", None, None).await.expect(200);
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Closer", "HelpDesk Bot"]);
    assert_eq!(all[1]["plans"][0]["name"], "Basic");
    assert_eq!(all[1]["plans"][0]["fixed_monthly"], 1900);

    let by_slug = app.call(Method::GET, "/api/catalog/?category=support", None, None).await.expect(200);
    assert_eq!(by_slug.as_array().unwrap().len(), 1);
    let by_id = app.call(Method::GET, &format!("/api/catalog/?category={support_id}"), None, None).await.expect(200);
    assert_eq!(by_id[0]["id"], helpdesk.as_str());
    let q = app.call(Method::GET, "/api/catalog/?q=helpdesk", None, None).await.expect(200);
    assert_eq!(q.as_array().unwrap().len(), 1);
    let q = app.call(Method::GET, "/api/catalog/?q=100%25", None, None).await.expect(200);
    assert_eq!(q[0]["id"], helpdesk.as_str(), "search over descriptions, % taken literally");
    let q = app.call(Method::GET, "/api/catalog/?q=10_%25", None, None).await.expect(200);
    assert_eq!(q, json!([]));
    let none = app.call(Method::GET, "/api/catalog/?category=sales&q=help", None, None).await.expect(200);
    assert_eq!(none, json!([]));
    app.call(Method::GET, "/api/catalog/?sort=price", None, None).await.refused(422, "invalid");

    app.post(&format!("/api/offerings/{closer}/pause"), &seller, json!({})).await.expect(200);
    let after = app.call(Method::GET, "/api/catalog/", None, None).await.expect(200);
    assert_eq!(after.as_array().unwrap().len(), 1);
}

/// The `Link` header's target for `rel`, if the answer has one.
fn link(answer: &common::Answer, rel: &str) -> Option<String> {
    let header = answer.headers.get("link")?.to_str().unwrap();
    header.split(", ").find_map(|part| {
        let (target, rest) = part.split_once(">; ")?;
        (rest == format!("rel=\"{rel}\"")).then(|| target.trim_start_matches('<').to_owned())
    })
}

/// Every list is a JSON array of at most `page_size` items; a `Link`
/// header leads to the pages beside it, keeping the filters.
async fn lists_come_in_pages(app: TestApp) {
    let operator = app.operator().await;
    for name in ["Alpha", "Bravo", "Charlie", "Delta", "Echo"] {
        app.post("/api/categories/", &operator, json!({"name": name})).await.expect(201);
    }
    let all = app.get("/api/categories/", &operator).await;
    assert_eq!(link(&all, "next"), None, "all fit the default page");
    let all: Vec<Value> = all.expect(200).as_array().unwrap().clone();
    assert_eq!(all.len(), 5);

    let mut next = Some("/api/categories?page_size=2".to_owned());
    let (mut walked, mut pages) = (Vec::new(), 0);
    while let Some(path) = next {
        let page = app.get(&path, &operator).await;
        pages += 1;
        assert_eq!(link(&page, "prev").is_some(), pages > 1, "{path}");
        next = link(&page, "next");
        let items = page.expect(200);
        assert!(items.as_array().unwrap().len() <= 2);
        walked.extend(items.as_array().unwrap().iter().cloned());
    }
    assert_eq!((pages, walked), (3, all), "each item once, in order");
    let past = app.get("/api/categories?page=9&page_size=2", &operator).await;
    assert_eq!(link(&past, "prev").as_deref(), Some("/api/categories?page=8&page_size=2"));
    assert_eq!(past.expect(200), json!([]));

    for bad in ["page=0", "page=two", "page_size=0", "page_size=1001"] {
        let detail = app.get(&format!("/api/categories?{bad}"), &operator).await.refused(422, "invalid");
        assert!(detail.contains("must be a whole number"), "{bad}: {detail}");
    }

    // Filters stay in the links, and are still checked.
    let m = app.market(json!({})).await;
    let (second, _) = app.draft_offering(&m.seller, &m.provider, &m.agent, json!({"name": "Echo Lite"})).await;
    app.activate(&m.seller, &m.operator, &second).await;
    let first = app.get("/api/offerings?state=active&page_size=1", &m.buyer).await;
    assert_eq!(link(&first, "next").as_deref(), Some("/api/offerings?state=active&page=2&page_size=1"));
    assert_eq!(first.expect(200)[0]["name"], "Echo Lite");
    let detail = app.get("/api/offerings?page_size=1&colour=red", &m.buyer).await.refused(422, "invalid");
    assert!(detail.contains("colour"), "{detail}");
    // A catalog page carries its offerings' plans.
    let page = app.call(Method::GET, "/api/catalog?page=2&page_size=1", None, None).await;
    assert_eq!(link(&page, "next"), None);
    let page = page.expect(200);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "Echo Pro");
    assert_eq!(page[0]["plans"].as_array().unwrap().len(), 1, "{page}");
}
