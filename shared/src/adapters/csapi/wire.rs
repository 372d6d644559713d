//! Translation between the CSAPI wire types of `google-cloud-support-v2` and casesync's
//! domain types. The engine never sees a wire type (docs/ARCHITECTURE.md#layers), so every decision about
//! missing fields, enum values and identities is made here, once.

use crate::domain::{
    GoogleActor, GoogleAttachment, GoogleCase, GoogleComment, NewGoogleCase, Priority,
};
use chrono::{DateTime, Utc};
use google_cloud_support_v2::model;

/// A wire timestamp as a UTC time. An absent or out-of-range one becomes the Unix epoch:
/// every CSAPI object carries its times, and the epoch sorts first and is far outside every
/// window, so a malformed item can never look new.
pub fn time(ts: Option<&google_cloud_wkt::Timestamp>) -> DateTime<Utc> {
    ts.and_then(|t| {
        let nanos = u32::try_from(t.nanos()).ok()?;
        DateTime::from_timestamp(t.seconds(), nanos)
    })
    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The wire priority as P0..P4. Every case has one in practice; an unspecified or unknown
/// value (a newer API revision) reads as P4, the lowest, so casesync never escalates a case
/// on a value it does not understand.
pub fn priority_from_wire(p: &model::case::Priority) -> Priority {
    match p {
        model::case::Priority::P0 => Priority::P0,
        model::case::Priority::P1 => Priority::P1,
        model::case::Priority::P2 => Priority::P2,
        model::case::Priority::P3 => Priority::P3,
        _ => Priority::P4,
    }
}

pub fn priority_to_wire(p: Priority) -> model::case::Priority {
    match p {
        Priority::P0 => model::case::Priority::P0,
        Priority::P1 => model::case::Priority::P1,
        Priority::P2 => model::case::Priority::P2,
        Priority::P3 => model::case::Priority::P3,
        Priority::P4 => model::case::Priority::P4,
    }
}

/// Who wrote something. `username` is the documented identity (`email` is deprecated);
/// the deprecated field is the fallback for callers the API still reports only there.
/// Google agents carry neither in a usable form, and `googleSupport` tells them apart.
#[allow(deprecated)] // reading `email` as the fallback is the point
pub fn actor(a: Option<&model::Actor>) -> GoogleActor {
    let Some(a) = a else {
        return GoogleActor::default();
    };
    let email = [&a.username, &a.email]
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .cloned();
    GoogleActor {
        display_name: a.display_name.clone(),
        email,
        google_support: a.google_support,
    }
}

pub fn case(c: model::Case) -> GoogleCase {
    let closed = matches!(c.state, model::case::State::Closed);
    let priority = priority_from_wire(&c.priority);
    let (classification_id, classification_display_name) = c
        .classification
        .map(|cl| (cl.id, cl.display_name))
        .unwrap_or_default();
    GoogleCase {
        priority,
        closed,
        classification_id,
        classification_display_name,
        create_time: time(c.create_time.as_ref()),
        update_time: time(c.update_time.as_ref()),
        creator: actor(c.creator.as_ref()),
        name: c.name,
        display_name: c.display_name,
        description: c.description,
    }
}

pub fn comment(c: model::Comment) -> GoogleComment {
    GoogleComment {
        create_time: time(c.create_time.as_ref()),
        creator: actor(c.creator.as_ref()),
        name: c.name,
        body: c.body,
    }
}

pub fn attachment(a: model::Attachment) -> GoogleAttachment {
    GoogleAttachment {
        create_time: time(a.create_time.as_ref()),
        creator: actor(a.creator.as_ref()),
        // int64 on the wire; a negative size is nonsense and reads as unknown (0).
        size_bytes: u64::try_from(a.size_bytes).unwrap_or(0),
        name: a.name,
        filename: a.filename,
        mime_type: a.mime_type,
    }
}

/// The body of `cases.create`. Only the documented input fields are set: the server
/// assigns name, state, times and creator.
pub fn new_case(c: &NewGoogleCase) -> model::Case {
    model::Case::new()
        .set_display_name(c.display_name.clone())
        .set_description(c.description.clone())
        .set_classification(model::CaseClassification::new().set_id(c.classification_id.clone()))
        .set_priority(priority_to_wire(c.priority))
        .set_subscriber_email_addresses(c.subscriber_emails.clone())
        .set_test_case(c.test_case)
}

/// Comments oldest first. The API documents no order, so the adapter sorts by
/// `createTime`, then by name so equal times keep a stable order, and drops a comment a
/// shifting page boundary delivered twice.
pub fn sort_comments(mut comments: Vec<GoogleComment>) -> Vec<GoogleComment> {
    comments.sort_by(|a, b| {
        a.create_time
            .cmp(&b.create_time)
            .then_with(|| a.name.cmp(&b.name))
    });
    comments.dedup_by(|a, b| a.name == b.name);
    comments
}

/// Drops duplicates by name, keeping the newest version: a case updated while the pages
/// are read may move from a later page to an earlier one or appear on two.
pub fn dedup_cases(cases: Vec<GoogleCase>) -> Vec<GoogleCase> {
    let mut out: Vec<GoogleCase> = Vec::with_capacity(cases.len());
    let mut index = std::collections::HashMap::new();
    for c in cases {
        match index.get(&c.name) {
            Some(&i) => {
                let kept: &mut GoogleCase = &mut out[i];
                if c.update_time > kept.update_time {
                    *kept = c;
                }
            }
            None => {
                index.insert(c.name.clone(), out.len());
                out.push(c);
            }
        }
    }
    out
}

/// The same for attachments (no version to prefer: an attachment never changes).
pub fn dedup_attachments(attachments: Vec<GoogleAttachment>) -> Vec<GoogleAttachment> {
    let mut seen = std::collections::HashSet::new();
    attachments
        .into_iter()
        .filter(|a| seen.insert(a.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn wire_case_json() -> serde_json::Value {
        serde_json::json!({
            "name": "projects/demo/cases/10000001",
            "displayName": "Disk is slow",
            "description": "It is slow.\ncasesync: jira case ABC-1",
            "classification": {"id": "100IK2AK", "displayName": "Technical Issue > Compute > Compute Engine"},
            "state": "IN_PROGRESS_GOOGLE_SUPPORT",
            "createTime": "2026-11-01T10:00:00Z",
            "updateTime": "2026-11-29T20:04:05.123456Z",
            "creator": {"displayName": "Alex", "email": "alex@example.com", "username": "alex@example.com"},
            "priority": "P2"
        })
    }

    #[test]
    fn a_case_maps_every_field() {
        let wire: model::Case = serde_json::from_value(wire_case_json()).unwrap();
        let c = case(wire);
        assert_eq!(c.name, "projects/demo/cases/10000001");
        assert_eq!(c.display_name, "Disk is slow");
        assert_eq!(c.description, "It is slow.\ncasesync: jira case ABC-1");
        assert_eq!(c.classification_id, "100IK2AK");
        assert_eq!(
            c.classification_display_name,
            "Technical Issue > Compute > Compute Engine"
        );
        assert_eq!(c.priority, Priority::P2);
        assert!(!c.closed);
        assert_eq!(
            c.create_time,
            Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
        );
        assert_eq!(
            c.update_time,
            Utc.with_ymd_and_hms(2026, 11, 29, 20, 4, 5).unwrap()
                + chrono::Duration::microseconds(123_456)
        );
        assert_eq!(
            c.creator,
            GoogleActor {
                display_name: "Alex".into(),
                email: Some("alex@example.com".into()),
                google_support: false
            }
        );
    }

    #[test]
    fn closed_state_and_integer_enums_map() {
        // The crate asks for `enum-encoding=int`; the server then answers integers.
        let mut j = wire_case_json();
        j["state"] = serde_json::json!(5);
        j["priority"] = serde_json::json!(1);
        let c = case(serde_json::from_value(j).unwrap());
        assert!(c.closed);
        assert_eq!(c.priority, Priority::P0);
        for (state, closed) in [
            ("NEW", false),
            ("SOLUTION_PROVIDED", false),
            ("CLOSED", true),
        ] {
            let mut j = wire_case_json();
            j["state"] = serde_json::json!(state);
            assert_eq!(case(serde_json::from_value(j).unwrap()).closed, closed);
        }
    }

    #[test]
    fn priorities_map_both_ways() {
        for p in Priority::ALL {
            assert_eq!(priority_from_wire(&priority_to_wire(p)), p);
        }
        assert_eq!(priority_to_wire(Priority::P0).value(), Some(1));
        assert_eq!(priority_to_wire(Priority::P4).value(), Some(5));
        assert_eq!(
            priority_from_wire(&model::case::Priority::Unspecified),
            Priority::P4
        );
        assert_eq!(
            priority_from_wire(&model::case::Priority::from(42)),
            Priority::P4
        );
    }

    #[test]
    fn missing_fields_have_safe_defaults() {
        let c = case(
            serde_json::from_value(serde_json::json!({"name": "projects/p/cases/1"})).unwrap(),
        );
        assert_eq!(c.classification_id, "");
        assert_eq!(c.create_time, DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(c.creator, GoogleActor::default());
        assert_eq!(c.priority, Priority::P4);
        assert!(!c.closed);
    }

    #[test]
    #[allow(deprecated)]
    fn google_agents_and_deprecated_email() {
        let agent = model::Actor::new()
            .set_display_name("Support Engineer")
            .set_google_support(true);
        let a = actor(Some(&agent));
        assert!(a.google_support);
        assert_eq!(a.email, None);
        let old = model::Actor::new()
            .set_display_name("Old")
            .set_email("old@example.com");
        assert_eq!(actor(Some(&old)).email.as_deref(), Some("old@example.com"));
        let both = model::Actor::new()
            .set_email("deprecated@example.com")
            .set_username("sa@p.iam.gserviceaccount.com");
        assert_eq!(
            actor(Some(&both)).email.as_deref(),
            Some("sa@p.iam.gserviceaccount.com")
        );
    }

    #[test]
    fn a_comment_maps() {
        let wire: model::Comment = serde_json::from_value(serde_json::json!({
            "name": "projects/p/cases/1/comments/300000001",
            "createTime": "2026-11-29T20:04:05Z",
            "creator": {"displayName": "Google Support", "googleSupport": true},
            "body": "Hello",
            "plainTextBody": "Hello"
        }))
        .unwrap();
        let c = comment(wire);
        assert_eq!(c.name, "projects/p/cases/1/comments/300000001");
        assert_eq!(c.body, "Hello");
        assert!(c.creator.google_support);
        assert_eq!(c.creator.display_name, "Google Support");
        assert_eq!(
            c.create_time,
            Utc.with_ymd_and_hms(2026, 11, 29, 20, 4, 5).unwrap()
        );
    }

    #[test]
    fn an_attachment_maps_with_its_int64_size_as_string() {
        let wire: model::Attachment = serde_json::from_value(serde_json::json!({
            "name": "projects/p/cases/1/attachments/0684M00000P3h1fQAB",
            "createTime": "2026-11-29T20:04:05Z",
            "creator": {"displayName": "Alex", "username": "alex@example.com"},
            "filename": "graph.jpg",
            "mimeType": "image/jpeg",
            "sizeBytes": "5368709120"
        }))
        .unwrap();
        let a = attachment(wire);
        assert_eq!(a.name, "projects/p/cases/1/attachments/0684M00000P3h1fQAB");
        assert_eq!(a.filename, "graph.jpg");
        assert_eq!(a.mime_type, "image/jpeg");
        assert_eq!(a.size_bytes, 5_368_709_120);
        assert_eq!(a.creator.email.as_deref(), Some("alex@example.com"));
        let negative = model::Attachment::new().set_size_bytes(-1);
        assert_eq!(attachment(negative).size_bytes, 0);
    }

    #[test]
    fn new_case_sets_only_input_fields() {
        let c = new_case(&NewGoogleCase {
            display_name: "Summary".into(),
            description: "Text\ncasesync: jira case ABC-1".into(),
            classification_id: "100IK2AK".into(),
            priority: Priority::P3,
            subscriber_emails: vec!["ops@example.com".into()],
            test_case: true,
        });
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "displayName": "Summary",
                "description": "Text\ncasesync: jira case ABC-1",
                "classification": {"id": "100IK2AK"},
                "subscriberEmailAddresses": ["ops@example.com"],
                "testCase": true,
                // The crate sends enums as integers (`enum-encoding=int`): P3 is 4.
                "priority": 4
            })
        );
    }

    fn gc(name: &str, secs: i64) -> GoogleComment {
        GoogleComment {
            name: name.into(),
            body: String::new(),
            create_time: DateTime::from_timestamp(secs, 0).unwrap(),
            creator: GoogleActor::default(),
        }
    }

    #[test]
    fn comments_sort_oldest_first_and_dedup() {
        let sorted = sort_comments(vec![
            gc("c/3", 30),
            gc("c/1", 10),
            gc("c/2", 20),
            gc("c/1", 10),
        ]);
        let names: Vec<_> = sorted.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c/1", "c/2", "c/3"]);
        let ties = sort_comments(vec![gc("c/b", 10), gc("c/a", 10)]);
        assert_eq!(ties[0].name, "c/a");
    }

    #[test]
    fn dedup_cases_keeps_the_newest_version() {
        let mut old: GoogleCase = case(serde_json::from_value(wire_case_json()).unwrap());
        old.update_time = DateTime::from_timestamp(10, 0).unwrap();
        let mut new = old.clone();
        new.update_time = DateTime::from_timestamp(20, 0).unwrap();
        new.display_name = "newer".into();
        let mut other = old.clone();
        other.name = "projects/demo/cases/2".into();
        let out = dedup_cases(vec![old.clone(), other, new]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].display_name, "newer");
    }
}
