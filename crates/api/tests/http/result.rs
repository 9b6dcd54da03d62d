//! O4 and O5: establishing and reading the result (the seed operation).

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn establishing_a_result_answers_it_and_stores_it() {
    let app = spawn_app().await;
    let process = app.create_process("relying-app", 1).await;
    let id = process["id"].as_str().expect("id");

    let r = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
    assert_problem(r, 404, "result-not-established", "no result yet").await;

    let r = app.put_result("relying-app", id, r#"{"status":"finished","details":{"message":"all signed"}}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body, json!({"status": "finished", "details": {"message": "all signed"}}));

    let r = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json"), body);

    let p: Value = app.get("relying-app", &format!("/signer_processes/{id}")).await.json().await.expect("json");
    assert_eq!(p["result"], body);
    assert_eq!(p["tasks"]["pending"], json!([]), "no pending task once the result is established");
    assert_eq!(p["documents"][0]["result"], json!({"status": "finished"}), "derived document result");
}

#[tokio::test]
async fn a_result_without_message_is_answered_without_details() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    for body in [r#"{"status":"canceled","details":null}"#, r#"{"status":"canceled"}"#] {
        let r = app.put_result("relying-app", &id, body).await;
        assert_eq!(r.status(), 200, "{body}: null details and missing details mean the same");
        assert_eq!(r.json::<Value>().await.expect("json"), json!({"status": "canceled"}));
    }
}

#[tokio::test]
async fn an_identical_replay_answers_200_and_writes_no_second_event() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 2).await["id"].as_str().expect("id").to_owned();
    let body = r#"{"status":"failed","details":{"message":"user declined"}}"#;
    assert_eq!(app.put_result("relying-app", &id, body).await.status(), 200);
    let replay = app.put_result("relying-app", &id, body).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(
        replay.json::<Value>().await.expect("json"),
        json!({"status": "failed", "details": {"message": "user declined"}})
    );
    assert_eq!(app.events_of(&id).await, ["created", "result"]);

    let other = app.put_result("relying-app", &id, r#"{"status":"failed","details":{"message":"other"}}"#).await;
    let problem = assert_problem(other, 409, "result-already-established", "a different message is a conflict").await;
    assert_eq!(problem["current_result"], json!({"status": "failed", "details": {"message": "user declined"}}));
}

#[tokio::test]
async fn thirty_two_concurrent_different_results_have_exactly_one_winner() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 2).await["id"].as_str().expect("id").to_owned();
    let statuses = ["finished", "failed", "failed_documents", "canceled"];
    let bodies: Vec<String> = (0..32)
        .map(|i| json!({"status": statuses[i % 4], "details": {"message": format!("attempt {i}")}}).to_string())
        .collect();
    let responses = join_all(bodies.iter().map(|b| app.put_result("relying-app", &id, b))).await;
    let mut winners = Vec::new();
    for (body, response) in bodies.iter().zip(responses) {
        match response.status().as_u16() {
            200 => winners.push(body.clone()),
            409 => {
                let p: Value = response.json().await.expect("problem");
                assert_eq!(p["type"], "urn:esignsp:problem:result-already-established", "{p}");
            }
            other => panic!("unexpected status {other} for {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner among 32");
    let winner: Value = serde_json::from_str(&winners[0]).expect("json");
    let stored: Value =
        app.get("relying-app", &format!("/signer_processes/{id}/result")).await.json().await.expect("json");
    assert_eq!(stored, winner, "the stored result is the winner's");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM process_events WHERE process_id = '{id}' AND kind = 'result'")).await,
        1
    );
}

#[tokio::test]
async fn put_does_not_create_and_unknown_processes_answer_404_or_410() {
    let app = spawn_app().await;
    let unknown = "0123456789abcdefghijklmnopqrstuv";
    let r = app.put_result("relying-app", unknown, r#"{"status":"finished"}"#).await;
    assert_problem(r, 404, "not-found", "PUT on an unknown process").await;
    let r = app.get("relying-app", &format!("/signer_processes/{unknown}/result")).await;
    assert_problem(r, 410, "process-not-found", "GET result of an unknown process").await;
    assert_eq!(app.count("SELECT count(*) FROM signer_processes").await, 0);
}

#[tokio::test]
async fn rule_violations_answer_409_naming_the_rule_and_change_nothing() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    let r = app.put_result("relying-app", &id, r#"{"status":"failed_documents"}"#).await;
    let p = assert_problem(r, 409, "result-conflicts-with-documents", "one document").await;
    assert_eq!(p["rule"], "failed_documents");
    assert!(p["detail"].as_str().expect("detail").contains("failed_documents"));
    assert_eq!(app.events_of(&id).await, ["created"]);
    let r = app.get("relying-app", &format!("/signer_processes/{id}/result")).await;
    assert_eq!(r.status(), 404, "still pending");
}

#[tokio::test]
async fn results_survive_a_restart_of_the_service() {
    let app = spawn_app().await;
    let id = app.create_process("relying-app", 1).await["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.put_result("relying-app", &id, r#"{"status":"finished","details":{"message":"kept"}}"#).await.status(),
        200
    );
    app.stop().await;

    let restarted = start(app.settings.clone(), app.database_url.clone()).await;
    let r = restarted.get("relying-app", &format!("/signer_processes/{id}/result")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json"), json!({"status": "finished", "details": {"message": "kept"}}));
}
