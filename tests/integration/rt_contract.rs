//! The CRM contract suite run against the RT adapter and a real Request Tracker 5 started
//! by `scripts/rt.sh`, plus RT's traps, each with a test that fails if the adapter did not
//! handle it: a refused write answered 200, RT's own transactions (autoreply records,
//! status changes) next to the comments, RT reopening a ticket on correspondence, and
//! attachment listings full of MIME and mail parts.

use casesync_tests::rt::{RtInstance, RtPerson, rt_priority};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::adapters::rt::{CommentType, RtConfig, RtCrm, Secret};
use shared::crm_contract::{
    self, ContractFixture, CrmTestDriver, DriverCapabilities, DriverResult, PersonCase,
};
use shared::domain::{AttachmentUpload, NewCrmCase, Priority};
use shared::ports::Crm;
use shared::{ErrorClass, PortError};

/// Small pages, so the suite's paging checks read several pages of a real RT.
const PAGE: u32 = 5;

/// The agent of the RT instance as the suite's person.
pub struct RtDriver {
    person: RtPerson,
}

#[crm_contract::async_trait]
impl CrmTestDriver for RtDriver {
    fn capabilities(&self) -> DriverCapabilities {
        DriverCapabilities {
            comment_page_size: PAGE as usize,
            search_page_size: PAGE as usize,
            comments_newest_first: false,
        }
    }

    fn person_name(&self) -> String {
        self.person.name.clone()
    }

    fn unknown_case_id(&self) -> String {
        "99999999".into()
    }

    async fn open_case(&self, case: &PersonCase) -> DriverResult<String> {
        Ok(self
            .person
            .open_ticket(
                &case.summary,
                &case.description,
                rt_priority(case.priority),
                case.flagged,
                None,
            )
            .await?)
    }

    async fn comment_as_person(&self, case_id: &str, body: &str) -> DriverResult<String> {
        Ok(self.person.message(case_id, "comment", body).await?)
    }

    async fn attach_as_person(
        &self,
        case_id: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String> {
        Ok(self
            .person
            .attach(case_id, "comment", filename, "text/plain", data)
            .await?)
    }

    async fn open_case_updated_at(
        &self,
        case: &PersonCase,
        at: DateTime<Utc>,
    ) -> DriverResult<Option<String>> {
        let id = self.open_case(case).await?;
        self.person.backdate(&id, at)?;
        Ok(Some(id))
    }
}

pub struct RtFixture {
    crm: RtCrm,
    driver: RtDriver,
}

impl ContractFixture for RtFixture {
    fn crm(&self) -> &dyn Crm {
        &self.crm
    }
    fn driver(&self) -> &dyn CrmTestDriver {
        &self.driver
    }
}

fn config(rt: &RtInstance) -> RtConfig {
    let mut c = rt.config();
    c.page_size = PAGE;
    c
}

async fn crm_with(config: RtConfig) -> RtCrm {
    RtCrm::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the adapter connects to RT: {e}"))
}

async fn fixture() -> RtFixture {
    let rt = RtInstance::shared();
    RtFixture {
        crm: crm_with(config(rt)).await,
        driver: RtDriver {
            person: rt.person(),
        },
    }
}

/// One `#[tokio::test]` per check of the CRM contract suite, on the shared RT.
mod contract {
    shared::crm_contract_tests!(super::fixture);
}

fn upload(filename: &str, data: &[u8]) -> AttachmentUpload {
    let chunk = bytes::Bytes::copy_from_slice(data);
    AttachmentUpload {
        filename: filename.into(),
        mime_type: "application/octet-stream".into(),
        size_bytes: data.len() as u64,
        body: Box::pin(futures::stream::iter([Ok(chunk)])),
        marker: None,
    }
}

fn status(ticket: &Value) -> String {
    ticket["Status"].as_str().unwrap_or_default().to_string()
}

// ---- connecting ---------------------------------------------------------------------------

#[tokio::test]
async fn connect_checks_the_token_user_and_queue() {
    let rt = RtInstance::shared();
    let crm = crm_with(config(rt)).await;
    assert_eq!(crm.kind(), "rt");
    assert_eq!(crm.identity().name, "casesync");

    // The agent's token presented as casesync's: casesync must use its own user.
    let mut foreign = config(rt);
    foreign.token = Secret::new(rt.var("RT_AGENT_TOKEN"));
    let err = RtCrm::connect(foreign).await.unwrap_err();
    assert!(matches!(err, PortError::Config(_)), "{err}");
    assert!(err.to_string().contains("crm.rt.token"), "{err}");

    let mut bad = config(rt);
    bad.token = Secret::new("1-2-not-a-token");
    let err = RtCrm::connect(bad).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Systemic, "{err}");
    assert!(!err.to_string().contains("not-a-token"), "{err}");

    let mut field = config(rt);
    field.google_case_field = "NoSuchField".into();
    let err = RtCrm::connect(field).await.unwrap_err();
    assert!(
        err.to_string().contains("crm.rt.google_case_field"),
        "{err}"
    );
}

// ---- trap: a refused write answered 200 ------------------------------------------------------

#[tokio::test]
async fn a_write_rt_refuses_with_200_is_an_error_not_a_success() {
    let rt = RtInstance::shared();
    let person = rt.person();
    let id = person
        .open_ticket("Refused writes", "x", 50, true, None)
        .await
        .unwrap();

    // The trap is real: RT answers 200 to a status it does not have.
    let said = person
        .update(&id, json!({"Status": "bogus"}))
        .await
        .unwrap();
    assert!(
        said.to_string().contains("isn't a valid status"),
        "RT's answer: {said}"
    );
    assert_eq!(status(&person.ticket(&id).await.unwrap()), "new");

    // casesync configured with a closing status this RT does not know.
    let mut c = config(rt);
    c.closed_statuses = vec!["resolved".into(), "bogus".into()];
    c.close_status = "bogus".into();
    let crm = crm_with(c).await;
    let err = crm.close_case(&id).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Systemic, "{err}");
    assert!(err.to_string().contains("crm.rt.close_status"), "{err}");
    assert!(!crm.get_case(&id).await.unwrap().closed);

    // A flag value the Select field does not offer: RT creates the ticket without it.
    let mut c = config(rt);
    c.sync_flag_value = "maybe".into();
    let crm = crm_with(c).await;
    let number = crm_contract::unique_case_number();
    let err = crm
        .create_case(&NewCrmCase {
            summary: "Flag refused".into(),
            description: "d".into(),
            priority: Priority::P2,
            google_case_name: format!("projects/p/cases/{number}"),
            google_case_number: number,
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Systemic, "{err}");
    assert!(err.to_string().contains("crm.rt.sync_flag_value"), "{err}");
}

// ---- trap: RT's own transactions and status changes -----------------------------------------

#[tokio::test]
async fn rts_autoreplies_and_status_changes_are_not_comments() {
    let rt = RtInstance::shared();
    let person = rt.person();
    let mut c = config(rt);
    c.comment_type = CommentType::Correspond;
    let crm = crm_with(c).await;
    // A requestor makes RT autoreply on create and mail on correspondence.
    let id = person
        .open_ticket(
            "Autoreply",
            "customer text",
            50,
            true,
            Some("dana@customer.example"),
        )
        .await
        .unwrap();
    let theirs = person
        .message(&id, "comment", "an agent's note")
        .await
        .unwrap();
    let ours = crm
        .add_comment(&id, "[Google Comment 5 by Gina]\nhello")
        .await
        .unwrap();

    // The trap is real: RT wrote an autoreply record and opened the ticket by itself.
    let history = person.history(&id).await.unwrap();
    let by_rt: Vec<&str> = history
        .iter()
        .filter(|t| t["Creator"]["Name"] == "RT_System")
        .filter_map(|t| t["Type"].as_str())
        .collect();
    assert!(by_rt.contains(&"EmailRecord"), "history: {history:?}");
    assert!(by_rt.contains(&"Status"), "history: {history:?}");
    assert_eq!(status(&person.ticket(&id).await.unwrap()), "open");
    assert!(rt.outgoing_mail().contains("dana@customer.example"));

    let comments = crm.list_comments(&id, None).await.unwrap();
    let ids: Vec<&str> = comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec![theirs.as_str(), ours.id.as_str()], "{comments:?}");
    assert!(!comments[0].by_connector && comments[1].by_connector);
    assert_eq!(comments[1].body, "[Google Comment 5 by Gina]\nhello");
    let case = crm.get_case(&id).await.unwrap();
    assert!(!case.closed, "RT's own opening is not a close");
    assert_eq!(case.description, "customer text");
}

#[tokio::test]
async fn correspondence_never_reopens_a_closed_ticket() {
    let rt = RtInstance::shared();
    let person = rt.person();
    let mut c = config(rt);
    c.comment_type = CommentType::Correspond;
    let crm = crm_with(c).await;

    // The trap is real: a reply on a resolved ticket reopens it.
    let probe = person
        .open_ticket("Reopen probe", "x", 50, true, None)
        .await
        .unwrap();
    person
        .update(&probe, json!({"Status": "resolved"}))
        .await
        .unwrap();
    person
        .message(&probe, "correspond", "one more thing")
        .await
        .unwrap();
    assert_eq!(status(&person.ticket(&probe).await.unwrap()), "open");

    let id = person
        .open_ticket("Closed by sync", "x", 50, true, None)
        .await
        .unwrap();
    let open_reply = crm.add_comment(&id, "while open").await.unwrap();
    crm.close_case(&id).await.unwrap();
    crm.add_comment(&id, "Syncing has resumed.").await.unwrap();
    crm.upload_attachment(&id, upload("late.log", b"late bytes"))
        .await
        .unwrap();
    assert_eq!(status(&person.ticket(&id).await.unwrap()), "resolved");
    assert!(crm.get_case(&id).await.unwrap().closed);
    let history = person.history(&id).await.unwrap();
    let kinds: Vec<&str> = history.iter().filter_map(|t| t["Type"].as_str()).collect();
    assert!(
        kinds.contains(&"Correspond"),
        "an open ticket gets correspondence: {kinds:?}"
    );
    assert_eq!(
        crm.list_comments(&id, None).await.unwrap().len(),
        3,
        "{open_reply:?}"
    );
}

// ---- trap: attachment listings that include mail parts -----------------------------------------

#[tokio::test]
async fn attachment_listings_skip_mime_and_mail_parts() {
    let rt = RtInstance::shared();
    let person = rt.person();
    let mut c = config(rt);
    c.comment_type = CommentType::Correspond;
    let crm = crm_with(c).await;
    let id = person
        .open_ticket(
            "Mail parts",
            "body",
            50,
            true,
            Some("erin@customer.example"),
        )
        .await
        .unwrap();
    let theirs = person
        .attach(
            &id,
            "correspond",
            "agent.txt",
            "text/plain",
            b"from the agent",
        )
        .await
        .unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let ours = crm
        .upload_attachment(&id, upload("dump.bin", &data))
        .await
        .unwrap();

    // The trap is real: RT lists containers, bodies and its outgoing mail as attachments.
    let raw = person.raw_parts(&id).await.unwrap();
    let unnamed = raw.iter().filter(|p| p["Filename"] == "").count();
    let containers = raw
        .iter()
        .filter(|p| {
            p["ContentType"]
                .as_str()
                .unwrap_or("")
                .starts_with("multipart/")
        })
        .count();
    assert!(unnamed >= 4 && containers >= 2, "RT listed: {raw:?}");

    let files = crm.list_attachments(&id).await.unwrap();
    let ids: Vec<&str> = files.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, vec![theirs.as_str(), ours.id.as_str()], "{files:?}");
    assert_eq!(files[1].size_bytes, 5000);
    assert!(files[1].by_connector && !files[0].by_connector);
    assert_eq!(files[0].author_name, "Alex Agent");
    let mut got = Vec::new();
    let mut stream = crm.download_attachment(&id, &files[1]).await.unwrap();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == data, "binary bytes come back equal");
    // RT turns text parts into UTF-8: a Latin-1 text file must still come back as sent.
    let latin1 = b"caf\xe9 cr\xe8me\n".to_vec();
    let text = crm
        .upload_attachment(
            &id,
            AttachmentUpload {
                mime_type: "text/plain".into(),
                ..upload("latin1.txt", &latin1)
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut stream = crm.download_attachment(&id, &text).await.unwrap();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, latin1, "a Latin-1 text file keeps its bytes");
    // The comments carrying casesync's uploads are casesync's own, so never mirrored.
    let comments = crm.list_comments(&id, None).await.unwrap();
    assert!(comments.iter().filter(|c| c.by_connector).count() == 2);
}

// ---- search ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_search_reads_whole_seconds_in_the_configured_zone() {
    let rt = RtInstance::shared();
    let person = rt.person();
    let crm = crm_with(config(rt)).await;
    let id = person
        .open_ticket("Zone", "x", 50, true, None)
        .await
        .unwrap();
    let at: DateTime<Utc> = "2026-01-10T08:00:00Z".parse().unwrap();
    person.backdate(&id, at).unwrap();
    let found = |cases: &[shared::domain::CrmCase]| cases.iter().any(|c| c.id == id);

    let utc = crm.search_updated_since(at).await.unwrap();
    assert!(found(&utc), "found at its own second");
    let later = crm
        .search_updated_since(at + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(!found(&later), "not found a second later");

    // RT reads this instance's TicketSQL in UTC: told Berlin, casesync would ask for an
    // hour later than meant and miss the ticket; so the zone is configuration, not a guess.
    let mut berlin = config(rt);
    berlin.time_zone = "Europe/Berlin".into();
    let berlin = crm_with(berlin).await;
    let shifted = berlin
        .search_updated_since(at - chrono::Duration::minutes(30))
        .await
        .unwrap();
    assert!(!found(&shifted), "a wrong zone shifts the window");
}
