use proptest::prelude::*;

use super::*;
use time::OffsetDateTime;

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random([n; 20])
}

/// The time every test decides at.
fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

fn state(results: &[Option<DocumentResultStatus>]) -> ProcessSnapshot {
    ProcessSnapshot {
        version: Version(0),
        result: None,
        documents: results
            .iter()
            .enumerate()
            .map(|(i, r)| DocumentState {
                id: doc_id(u8::try_from(i).expect("few documents")),
                result: r.map(|status| DocumentResult { status, message: None }),
            })
            .collect(),
        expires_at: now() + time::Duration::hours(1),
    }
}

/// The state machine's answer to a process result, as the service asks it.
fn establish(m: &ResultStateMachine, s: &ProcessSnapshot, r: ProcessResult) -> Result<Outcome<Change>, RuleViolation> {
    m.decide(s, now(), Request::Process(&r))
}

/// The state machine's answer to a document result.
fn set_document(
    m: &ResultStateMachine,
    s: &ProcessSnapshot,
    index: usize,
    r: DocumentResult,
) -> Result<Outcome<Change>, RuleViolation> {
    m.decide(s, now(), Request::Document { index, result: &r })
}

fn result(status: ResultStatus) -> ProcessResult {
    ProcessResult { status, message: None }
}

fn doc_result(status: DocumentResultStatus) -> DocumentResult {
    DocumentResult { status, message: None }
}

fn machine() -> ResultStateMachine {
    ResultStateMachine::with_default_rules()
}

use DocumentResultStatus as D;
use ResultStatus as P;

#[test]
fn terminal_replays_the_same_result_and_refuses_another() {
    let mut s = state(&[Some(D::Finished)]);
    s.result = Some(ProcessResult { status: P::Finished, message: Some(ResultMessage::new("ok").expect("msg")) });

    let same = ProcessResult { status: P::Finished, message: Some(ResultMessage::new("ok").expect("msg")) };
    assert!(matches!(establish(&machine(), &s, same), Ok(Outcome::Replayed(_))));

    let other_message = result(P::Finished);
    let err = establish(&machine(), &s, other_message).expect_err("a different message is a different result");
    assert_eq!(err.kind, ConflictKind::AlreadyEstablished);
    assert_eq!(err.current_result, Some(CurrentResult::Process(s.result.clone().expect("set"))));
}

#[test]
fn terminal_applies_before_the_document_rules() {
    // A stored finished result replays even though "failed" would now conflict too.
    let mut s = state(&[Some(D::Finished)]);
    s.result = Some(result(P::Finished));
    let err = establish(&machine(), &s, result(P::Failed)).expect_err("terminal");
    assert_eq!(err.rule, "terminal");
}

#[test]
fn finished_derives_finished_for_documents_without_result() {
    let s = state(&[Some(D::Finished), None, None]);
    let Ok(Outcome::Established(plan)) = establish(&machine(), &s, result(P::Finished)) else {
        panic!("finished must be accepted");
    };
    assert_eq!(plan.document_results, vec![(doc_id(1), doc_result(D::Finished)), (doc_id(2), doc_result(D::Finished))]);
}

#[test]
fn finished_is_refused_when_a_document_failed_or_was_canceled() {
    for other in [D::Failed, D::Canceled] {
        let err = establish(&machine(), &state(&[Some(D::Finished), Some(other)]), result(P::Finished))
            .expect_err("conflict");
        assert_eq!(err.rule, "finished", "document {other}");
        assert_eq!(err.kind, ConflictKind::ConflictsWithDocuments);
        assert!(err.detail.contains("finished"), "detail names the rule: {}", err.detail);
    }
}

#[test]
fn failed_and_canceled_refuse_a_finished_document_and_derive_their_own_status() {
    for (status, derived) in [(P::Failed, D::Failed), (P::Canceled, D::Canceled)] {
        let err = establish(&machine(), &state(&[Some(D::Finished), None]), result(status)).expect_err("conflict");
        assert_eq!(err.rule, "failed/canceled");

        let Ok(Outcome::Established(plan)) = establish(&machine(), &state(&[Some(D::Failed), None]), result(status))
        else {
            panic!("{status} must be accepted");
        };
        assert_eq!(plan.document_results, vec![(doc_id(1), doc_result(derived))], "{status}");
    }
}

#[test]
fn failed_documents_needs_two_documents_and_a_mixed_outcome() {
    let cases: [(&[Option<D>], bool, &str); 7] = [
        (&[None], false, "one document"),
        (&[Some(D::Finished)], false, "one finished document"),
        (&[Some(D::Finished), Some(D::Finished)], false, "every document finished"),
        (&[Some(D::Failed), Some(D::Canceled)], false, "all resulted, none finished"),
        (&[Some(D::Finished), Some(D::Failed)], true, "one finished, one failed"),
        (&[Some(D::Finished), None], true, "one finished, one without result"),
        (&[None, None], true, "no document result yet"),
    ];
    for (docs, accepted, why) in cases {
        let outcome = establish(&machine(), &state(docs), result(P::FailedDocuments));
        match outcome {
            Ok(Outcome::Established(plan)) => {
                assert!(accepted, "{why}: should be refused");
                assert!(plan.document_results.is_empty(), "{why}: documents without result keep none");
            }
            Ok(Outcome::Replayed(_)) => panic!("{why}: nothing to replay"),
            Err(v) => {
                assert!(!accepted, "{why}: should be accepted, got {v:?}");
                assert_eq!(v.rule, "failed_documents", "{why}");
            }
        }
    }
}

#[test]
fn an_expired_pending_process_answers_as_if_its_expiry_were_materialised() {
    let mut s = state(&[None, Some(D::Failed)]);
    s.expires_at = now();
    let pending = machine();
    let materialised = {
        let plan = pending.expire(&s, now()).expect("expired and pending");
        let mut m = s.clone();
        m.result = plan.result;
        for (id, r) in plan.document_results {
            if let Some(d) = m.documents.iter_mut().find(|d| d.id == id) {
                d.result = Some(r);
            }
        }
        m
    };
    assert_eq!(pending.expire(&materialised, now()), None, "expiry materialises once");
    assert_eq!(materialised.documents[0].result, Some(expiry_document_result()));
    assert_eq!(materialised.documents[1].result, Some(doc_result(D::Failed)), "a document result is kept");
    for state in [&s, &materialised] {
        for requested in [result(P::Canceled), result(P::Finished), result(P::Failed)] {
            let err = establish(&pending, state, requested.clone()).expect_err("a late result is refused");
            assert_eq!(err.kind, ConflictKind::AlreadyEstablished, "{requested:?}");
            assert_eq!(err.current_result, Some(CurrentResult::Process(expiry_result())), "{requested:?}");
        }
        assert!(
            matches!(establish(&pending, state, expiry_result()), Ok(Outcome::Replayed(_))),
            "the expiry result replays"
        );
        let err = set_document(&pending, state, 0, doc_result(D::Finished)).expect_err("late document result");
        assert_eq!(err.kind, ConflictKind::AlreadyEstablished);
        assert_eq!(err.current_result, Some(CurrentResult::Document(expiry_document_result())));
        assert!(matches!(set_document(&pending, state, 0, expiry_document_result()), Ok(Outcome::Replayed(_))));
        let err = set_document(&pending, state, 1, doc_result(D::Canceled)).expect_err("its own result stays");
        assert_eq!(err.current_result, Some(CurrentResult::Document(doc_result(D::Failed))));
    }
    assert_eq!(establish(&pending, &s, result(P::Finished)).expect_err("expired").rule, "expiry");
}

#[test]
fn document_results_are_terminal_and_frozen_after_the_process_result() {
    let s = state(&[Some(D::Finished), None]);
    assert!(matches!(set_document(&machine(), &s, 0, doc_result(D::Finished)), Ok(Outcome::Replayed(_))));
    let err = set_document(&machine(), &s, 0, doc_result(D::Failed)).expect_err("terminal");
    assert_eq!(err.kind, ConflictKind::AlreadyEstablished);
    assert!(matches!(set_document(&machine(), &s, 1, doc_result(D::Failed)), Ok(Outcome::Established(_))));

    let mut frozen = s.clone();
    frozen.result = Some(result(P::FailedDocuments));
    let err = set_document(&machine(), &frozen, 1, doc_result(D::Failed)).expect_err("frozen");
    assert_eq!(err.rule, "documents frozen");
    assert_eq!(err.kind, ConflictKind::DocumentsFrozen);
}

#[test]
fn a_rule_added_by_a_developer_runs_after_the_default_rules() {
    struct NoCancel;
    impl Rule for NoCancel {
        fn name(&self) -> &'static str {
            "no cancel"
        }
        fn check(&self, _: &ProcessSnapshot, request: Request<'_>) -> Result<(), String> {
            match request {
                Request::Process(r) if r.status == P::Canceled => Err("canceling is disabled".to_owned()),
                _ => Ok(()),
            }
        }
    }
    let m = ResultStateMachine::with_default_rules().with_rule(NoCancel);
    assert_eq!(establish(&m, &state(&[None]), result(P::Canceled)).expect_err("custom").rule, "no cancel");
    assert!(establish(&m, &state(&[None]), result(P::Failed)).is_ok());
}

/// A command a client can send against one process.
#[derive(Debug, Clone)]
enum Command {
    Process(P, bool),
    Document(usize, D, bool),
}

fn command() -> impl Strategy<Value = Command> {
    let message = any::<bool>();
    prop_oneof![
        (proptest::sample::select(P::ALL.to_vec()), message).prop_map(|(s, m)| Command::Process(s, m)),
        (0usize..4, proptest::sample::select(D::ALL.to_vec()), message)
            .prop_map(|(i, s, m)| Command::Document(i, s, m)),
    ]
}

fn message(with: bool) -> Option<ResultMessage> {
    with.then(|| ResultMessage::new("m").expect("valid"))
}

/// Applies a decision to the in-memory state, as an adapter would inside its transaction.
fn run(machine: &ResultStateMachine, s: &mut ProcessSnapshot, command: &Command) {
    let decided = match *command {
        Command::Process(status, m) => establish(machine, s, ProcessResult { status, message: message(m) }),
        Command::Document(index, status, m) if index < s.documents.len() => {
            set_document(machine, s, index, DocumentResult { status, message: message(m) })
        }
        Command::Document(..) => return,
    };
    if let Ok(Outcome::Established(change)) = decided {
        for (id, r) in change.document_results {
            let doc = s.documents.iter_mut().find(|d| d.id == id).expect("a change for a known document");
            assert!(doc.result.is_none(), "a change never overwrites a document result");
            doc.result = Some(r);
        }
        if let Some(r) = change.result {
            s.result = Some(r);
        }
        s.version.0 += 1;
    }
}

fn assert_invariants(s: &ProcessSnapshot) {
    let finished = s.documents.iter().filter(|d| is_finished(d)).count();
    let resulted = s.documents.iter().filter(|d| d.result.is_some()).count();
    let n = s.documents.len();
    match s.result.as_ref().map(|r| r.status) {
        None => {}
        Some(P::Finished) => assert_eq!(finished, n, "finished: every document finished"),
        Some(P::Failed | P::Canceled) => {
            assert_eq!(finished, 0, "failed/canceled: no document finished");
            assert_eq!(resulted, n, "failed/canceled: every document has a result");
        }
        Some(P::FailedDocuments) => {
            assert!(n >= 2, "failed_documents: at least two documents");
            assert!(finished < n, "failed_documents: not every document finished");
            assert!(!(resulted == n && finished == 0), "failed_documents: not all resulted with none finished");
        }
    }
}

proptest! {
    #[test]
    fn no_sequence_of_commands_breaks_an_invariant(
        documents in 1usize..4,
        commands in proptest::collection::vec(command(), 0..24),
    ) {
        let machine = machine();
        let mut s = state(&vec![None; documents]);
        let mut previous = s.clone();
        for c in &commands {
            run(&machine, &mut s, c);
            assert_invariants(&s);
            if let Some(r) = &previous.result {
                prop_assert_eq!(Some(r), s.result.as_ref(), "a process result never changes");
            }
            for (before, after) in previous.documents.iter().zip(&s.documents) {
                if before.result.is_some() {
                    prop_assert_eq!(&before.result, &after.result, "a document result never changes");
                }
            }
            previous = s.clone();
        }
    }

    #[test]
    fn replaying_an_accepted_result_changes_nothing(
        documents in 1usize..4,
        commands in proptest::collection::vec(command(), 0..12),
    ) {
        let machine = machine();
        let mut s = state(&vec![None; documents]);
        for c in &commands {
            run(&machine, &mut s, c);
        }
        if let Some(r) = s.result.clone() {
            prop_assert!(matches!(establish(&machine, &s, r), Ok(Outcome::Replayed(_))));
        }
    }
}
