//! The whole routine for one pupil through the web UI, in a real browser (Debian's
//! headless Chromium through chromedriver) against the real `fiktiv serve`, with
//! provisioning to the embedded OneRoster (CSV) target and to a real slapd:
//!
//! 1. the school opens a case, writes the plan (two versions), records the decisions,
//!    orders, and records who on the staff was told;
//! 2. the central administrator sees the order with its waiting time, registers the
//!    pupil (Fiktiv picks the digits); the accounts are provisioned to both targets;
//!    the administrator tests the targets, plans and applies, and scans for leaks;
//! 3. the school sees the accounts checked and the leak check clean;
//! 4. a review is recorded;
//! 5. a reveal is requested, approved by a second user, read once after the second
//!    factor is re-entered, and refused on the second read;
//! 6. the auditor filters the trail and verifies the chain.
//!
//! axe-core runs on every page visited; every title and URL visited is recorded and
//! checked to hold no part of the real identity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::pages;
use crate::support::web;

use fiktiv_tests::Slapd;
use pages::{
    add_ldap_target, click_choice, post_from_page, se_personnummer, wait_for, Tour,
    PROVISIONING_CONFIG,
};
use web::{first_sign_in, totp, Server, Session};

/// The pupil's real identity: invented for the test.
const REAL_FIRST: &str = "Kanarie";
const REAL_LAST: &str = "Provdocka";
const REAL_BIRTH: &str = "2015-03-09";
const FICT_BIRTH: &str = "2015-06-17";

#[test]
fn the_whole_routine_through_the_ui_for_one_pupil() {
    let slapd = Slapd::start().unwrap();
    let server = Server::start(PROVISIONING_CONFIG);
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let carl = server.add_user("carl.admin", &["central-admin"], &[]);
    let alva = server.add_user("alva.approver", &["approver"], &[]);
    let bert = server.add_user("bert.approver", &["approver"], &[]);
    let dora = server.add_user("dora.auditor", &["auditor"], &[]);
    add_ldap_target(&server, &slapd);
    let number = se_personnummer(2015, 3, 9, 482);
    let dashed = format!("{}-{}", &number[..8], &number[8..]);
    let short = number[2..].to_owned();
    let mut tour = Tour::new(vec![
        REAL_FIRST.into(),
        REAL_LAST.into(),
        number.clone(),
        dashed.clone(),
        short.clone(),
        REAL_BIRTH.into(),
    ]);

    // -----------------------------------------------------------------------
    // 1. The school opens a case, writes the plan and orders.
    // -----------------------------------------------------------------------
    let s = tour.browser();
    first_sign_in(&s, &server, &sara, 0);
    // Nothing is waiting for a new school yet: the start page says so.
    assert!(s.exists("#tasks-none"));
    tour.page(&s, "the school's start page (nothing to do)");
    s.click("nav a[href='/cases']");
    s.wait_for_path("/cases");
    tour.page(&s, "the case list (empty)");
    assert!(s.exists("#cases-none"));
    s.click("#open-case");
    s.wait_for_path("/cases/new");
    tour.page(&s, "the open-case form");
    for id in ["personal_number", "first_name", "last_name", "birth_date"] {
        assert!(
            s.exists(&format!("#{id}.real-identity[autocomplete='off']")),
            "{id}"
        );
    }
    assert!(s.exists("form[autocomplete='off']"));
    s.screenshot_for_docs("case-open.png");

    // A wrong check digit: the error is tied to its field and nothing is echoed.
    let wrong = format!(
        "{}{}",
        &number[..11],
        (number.as_bytes()[11] - b'0' + 1) % 10
    );
    s.fill("#personal_number", &wrong);
    s.fill("#first_name", REAL_FIRST);
    s.fill("#last_name", REAL_LAST);
    s.fill("#birth_date", REAL_BIRTH);
    // The page's script catches it before anything is sent, and every field keeps
    // what was typed.
    s.execute(
        "document.getElementById('case-open-submit').click();",
        serde_json::json!([]),
    );
    assert!(
        s.exists("#personal_number-check[role='alert']"),
        "{}",
        s.source()
    );
    assert!(s.exists(
        "#personal_number[aria-invalid='true'][aria-describedby~='personal_number-check']"
    ));
    assert!(
        s.url().ends_with("/cases/new"),
        "nothing was sent: {}",
        s.url()
    );
    for (id, v) in [
        ("personal_number", wrong.as_str()),
        ("first_name", REAL_FIRST),
        ("last_name", REAL_LAST),
        ("birth_date", REAL_BIRTH),
    ] {
        let kept = s.execute(
            "return document.getElementById(arguments[0]).value;",
            serde_json::json!([id]),
        );
        assert_eq!(kept, serde_json::json!(v), "{id} was kept");
    }
    tour.page(
        &s,
        "the open-case form with a check digit caught by the page",
    );
    // Sent anyway (a browser without the script): the server refuses it the same way.
    s.execute(
        "document.documentElement.dataset.stale = '1'; \
         document.getElementById('case-open-submit').form.submit();",
        serde_json::json!([]),
    );
    wait_for(&s, "#form-errors", 60);
    s.wait_for_path("/cases");
    assert!(s.exists("#form-errors a[href='#personal_number']"));
    assert!(s.exists(
        "#personal_number[aria-invalid='true'][aria-describedby~='personal_number-error']"
    ));
    let src = s.source();
    for v in [&wrong, REAL_FIRST, REAL_LAST, REAL_BIRTH] {
        assert!(!src.contains(v), "the form echoed a value");
    }
    tour.page(&s, "the open-case form with an error");

    s.fill("#personal_number", &dashed);
    s.fill("#first_name", REAL_FIRST);
    s.fill("#last_name", REAL_LAST);
    s.fill("#birth_date", REAL_BIRTH);
    s.click("#case-open-submit");
    let case_id = s.url().rsplit('/').next().unwrap().to_owned();
    assert_eq!(case_id.len(), 36, "{}", s.url());
    let case_path = format!("/cases/{case_id}");
    s.wait_for_path(&case_path);
    tour.page(&s, "the case page");
    assert!(!s.source().contains(REAL_LAST));
    // The real identity only on request, through the audited read.
    s.click("#show-identity");
    s.wait_for_path(&format!("{case_path}?show=identity"));
    let shown = s.text_of("#real-identity");
    assert!(shown.contains(REAL_FIRST) && shown.contains(REAL_LAST) && shown.contains(&number));
    tour.page(&s, "the case page with the real identity");
    s.click("#hide-identity");
    s.wait_for_path(&case_path);

    // The action plan, in two versions.
    s.click("#link-plan");
    s.wait_for_path(&format!("{case_path}/plan"));
    assert!(s.exists("#plan-no-history"));
    tour.page(&s, "the empty action plan");
    s.fill(
        "#information_handling",
        "Inga bilder publiceras. Namnet står inte på listor i korridoren.",
    );
    s.fill("#platforms", "Google Workspace\nUnikum");
    s.fill("#guardian_contact_routes", "Via rektor, telefon");
    s.fill("#staff_to_inform", "Klassföreståndare 4B\nSkolsköterska");
    s.fill("#free_text", "");
    // Where the plan was made: the meeting's day and who took part.
    s.fill("#meeting_date", "2026-11-30");
    s.fill(
        "#attendees",
        "Rektor\nKlassföreståndare 4B\nVårdnadshavare 1",
    );
    s.click("#plan-submit");
    s.wait_for_path(&format!("{case_path}/plan?saved=1"));
    assert!(s.exists("#plan-saved"));
    // A paragraph break, as a principal writes one: the browser sends CR LF.
    s.fill(
        "#free_text",
        "Uppdaterad efter mötet med vårdnadshavarna.\nAndra stycket: skjuts ordnas av skolan.",
    );
    s.click("#plan-submit");
    s.wait_for_path(&format!("{case_path}/plan?saved=2"));
    let page = s.source();
    assert!(
        page.contains("vårdnadshavarna.\nAndra stycket")
            || page.contains("vårdnadshavarna.\r\nAndra stycket"),
        "the text with its line break was not kept"
    );
    let history = s.text_of("#plan-history");
    assert_eq!(history.matches("sara.school").count(), 2, "{history}");
    tour.page(&s, "the action plan with its history");
    s.screenshot_for_docs("plan.png");
    s.click("#plan-history a[href$='version=1']");
    s.wait_for_path(&format!("{case_path}/plan?version=1"));
    assert!(s.exists("#plan-old"));
    tour.page(&s, "an earlier version of the plan");
    // Every version for print: no form, each with who and when, what changed marked,
    // and the paragraph break kept; it prints to PDF with the print styles.
    s.goto(&format!("{}{case_path}/plan", server.base()));
    s.click("#print-all");
    assert!(s.url().ends_with("/plan/print?all=1"), "{}", s.url());
    assert!(!s.exists("form textarea"));
    let n = s.execute(
        "return document.querySelectorAll('.plan-version').length;",
        serde_json::json!([]),
    );
    assert_eq!(n, serde_json::json!(2));
    let v2 = s.text_of("#version-2");
    assert!(v2.contains("2"), "{v2}");
    let marks = s.execute(
        "return Array.from(document.querySelectorAll('.plan-version')).map(v => v.querySelectorAll('.changed').length);",
        serde_json::json!([]),
    );
    assert_eq!(
        marks,
        serde_json::json!([0, 1]),
        "only the free text changed in version 2"
    );
    assert!(s.source().contains("vårdnadshavarna.\nAndra stycket"));
    assert_eq!(s.text_of("#meeting-1"), "2026-11-30");
    assert!(s
        .text_of("section[aria-labelledby='version-1']")
        .contains("Vårdnadshavare 1"));
    tour.page(&s, "every version of the plan, for print");
    s.screenshot_for_docs("plan-print.png");
    assert!(s.print_pdf().starts_with(b"%PDF-"));

    // The digital-login decision: no digital login needs the confirmation.
    s.goto(&format!("{}{case_path}", server.base()));
    s.click("#link-decision");
    s.wait_for_path(&format!("{case_path}/decision"));
    tour.page(&s, "the decision form");
    click_choice(&s, "#decision-no-digital-login");
    s.click("#decision-submit");
    s.wait_for_path(&format!("{case_path}/decision"));
    assert!(
        s.exists("#guardians_told[aria-invalid='true'][aria-describedby~='guardians_told-error']")
    );
    tour.page(&s, "the decision form with an error");
    s.screenshot_for_docs("decision.png");
    click_choice(&s, "#decision-fictitious-user");
    s.click("#decision-submit");
    s.wait_for_path(&format!("{case_path}?done=decision"));

    // The fictitious identity, from the suggestions.
    s.click("#link-fictitious");
    s.wait_for_path(&format!("{case_path}/fictitious"));
    tour.page(&s, "the fictitious identity form");
    s.screenshot_for_docs("fictitious.png");
    let fict_first = s.text_of("#suggested-first-names li:first-child");
    let fict_last = s.text_of("#suggested-last-names li:first-child");
    // The real birth date is refused (errors on the field, values kept: they are fictitious).
    s.fill("#first_name", &fict_first);
    s.fill("#last_name", &fict_last);
    s.fill("#birth_date", REAL_BIRTH);
    s.click("#fictitious-submit");
    s.wait_for_path(&format!("{case_path}/fictitious"));
    assert!(s.exists("#birth_date[aria-invalid='true']"));
    tour.page(&s, "the fictitious identity form with an error");
    s.fill("#birth_date", FICT_BIRTH);
    s.click("#fictitious-submit");
    s.wait_for_path(&format!("{case_path}?done=fictitious"));

    // Guardian 1 is not linked.
    s.click("#link-guardian-1");
    s.wait_for_path(&format!("{case_path}/guardians/1"));
    tour.page(&s, "the guardian form");
    assert!(s.exists("#real_personal_number.real-identity[autocomplete='off']"));
    click_choice(&s, "#linked-no");
    s.click("#guardian-submit");
    s.wait_for_path(&format!("{case_path}?done=guardian"));
    assert!(s.text_of("#guardians").contains("Inte kopplad"));

    // The order.
    s.click("#link-order");
    s.wait_for_path(&format!("{case_path}/order"));
    tour.page(&s, "the order form");
    // The platforms come from the plan, not typed again.
    let prefilled = s.execute(
        "return document.querySelector('#platforms').value;",
        serde_json::json!([]),
    );
    assert_eq!(prefilled, serde_json::json!("Google Workspace\nUnikum"));
    s.fill("#groups", "4B");
    s.click("#order-submit");
    s.wait_for_path(&format!("{case_path}?done=order"));
    assert!(s.text_of("#case-state").contains("Beställt"));
    tour.page(&s, "the case page after the order");

    // Staff told.
    s.click("#link-staff");
    s.wait_for_path(&format!("{case_path}/staff-told"));
    tour.page(&s, "the staff-told page");
    // Compared with the plan: both are still to be told.
    let to_tell = s.text_of("#staff-to-tell");
    assert!(
        to_tell.contains("Klassföreståndare 4B") && to_tell.contains("Skolsköterska"),
        "{to_tell}"
    );
    s.fill("#staff", "Skolsköterska");
    s.click("#staff-submit");
    s.wait_for_path(&format!("{case_path}/staff-told?saved=1"));
    assert!(s.text_of("#staff-table").contains("Skolsköterska"));
    let to_tell = s.text_of("#staff-to-tell");
    assert!(
        to_tell.contains("Klassföreståndare 4B") && !to_tell.contains("Skolsköterska"),
        "{to_tell}"
    );
    s.fill("#staff", "klassföreståndare 4B");
    s.click("#staff-submit");
    s.wait_for_path(&format!("{case_path}/staff-told?saved=1"));
    assert!(s.exists("#staff-all-told"));
    tour.page(&s, "the staff-told list");
    s.screenshot_for_docs("staff-told.png");

    // -----------------------------------------------------------------------
    // 2. The administrator registers the pupil; provisioning runs.
    // -----------------------------------------------------------------------
    let c = tour.browser();
    first_sign_in(&c, &server, &carl, 0);
    // The start page lists what is waiting: the one order, linked to the queue.
    let task = c.text_of("#tasks .task[data-kind='orders-waiting']");
    assert!(task.contains('1'), "{task}");
    tour.page(&c, "the central administrator's start page");
    c.screenshot_for_docs("start-central-admin.png");
    c.click("#tasks .task[data-kind='orders-waiting'] a");
    c.wait_for_path("/orders");
    tour.page(&c, "the order queue");
    let row = c.text_of(".order-row");
    assert!(row.contains(&fict_first) && row.contains(&fict_last) && row.contains("4B"));
    assert!(!c.source().contains(REAL_LAST));
    assert!(c.text_of(".order-row .waited").contains("min"));
    c.screenshot_for_docs("orders.png");
    c.click(".order-link");
    let order_path = pages::path_of(&c.url());
    assert!(order_path.starts_with("/orders/"));
    tour.page(&c, "the registration form");
    assert!(c.exists("#mode-pick:checked"));
    c.screenshot_for_docs("register.png");
    // Own digits that are not three digits: the error is on the field.
    click_choice(&c, "#mode-choose");
    c.fill("#serial", "12a");
    c.click("#register-submit");
    c.wait_for_path(&order_path);
    assert!(c.exists("#serial[aria-invalid='true'][aria-describedby~='serial-error']"));
    assert!(c.exists("#form-errors a[href='#serial']"));
    tour.page(&c, "the registration form with an error");
    click_choice(&c, "#mode-pick");
    c.click("#register-submit");
    c.wait_for_path(&format!("{order_path}?registered=1"));
    let fict_number = c.text_of("#registered-number");
    assert_eq!(fict_number.len(), 12, "{fict_number}");
    tour.page(&c, "the registered order");

    // Provisioning: both targets get the account (the worker runs on its own).
    c.goto(&format!("{}/provisioning", server.base()));
    pages::wait_until(&c, &server, "/provisioning", |b| {
        ["ldap", "oneroster"]
            .iter()
            .all(|t| b.text_of(&format!(".target-row[data-target='{t}'] .jobs-done")) == "1")
    });
    assert!(c.exists("#failed-none"));
    tour.page(&c, "the provisioning status");
    c.screenshot_for_docs("provisioning.png");
    let ldif = pages::ldif_text(&slapd.ldapsearch("(objectClass=*)", &[]).unwrap());
    assert!(
        ldif.contains(&fict_first) && ldif.contains(&fict_last),
        "{ldif}"
    );
    let csv = std::fs::read_to_string(server.dir.path().join("data/oneroster/users.csv")).unwrap();
    assert!(
        csv.contains(&fict_first) && csv.contains(&fict_last),
        "{csv}"
    );
    // Point 9: the username follows the municipality's pattern, like any pupil's: no
    // part of Fiktiv's own id in it.
    let rows = fiktiv_provisioning::oneroster::parse_csv(csv.as_bytes()).unwrap();
    let pupil = rows
        .iter()
        .find(|r| r.get("givenName") == Some(&fict_first))
        .unwrap();
    let username = pupil.get("username").unwrap();
    assert!(
        username.contains('.')
            && !username
                .split('.')
                .any(|p| p.len() == 8 && p.chars().all(|c| c.is_ascii_hexdigit())),
        "{username}"
    );
    for real in [REAL_FIRST, REAL_LAST, number.as_str(), short.as_str()] {
        assert!(
            !ldif.contains(real) && !csv.contains(real),
            "a real value downstream"
        );
    }

    // Targets: the connectivity test of each.
    c.click("#link-targets");
    c.wait_for_path("/provisioning/targets");
    tour.page(&c, "the targets");
    c.click("#test-ldap");
    c.wait_for_path("/provisioning/targets/ldap/test");
    assert!(c.exists("#test-ok"), "{}", c.text_of("#test-report"));
    // The details are in Swedish too, with the configured values filled in.
    let report = c.text_of("#test-report");
    for english in [
        "exists",
        "bound as",
        "connected",
        "probe entry",
        "every object class",
    ] {
        assert!(
            !report.contains(english),
            "untranslated detail {english:?}: {report}"
        );
    }
    assert!(report.contains("inloggad som"), "{report}");
    tour.page(&c, "the connectivity test of the LDAP target");
    c.screenshot_for_docs("targets.png");
    c.click("#test-oneroster");
    c.wait_for_path("/provisioning/targets/oneroster/test");
    assert!(c.exists("#test-ok"));

    // Sync plan (nothing to do) and apply.
    c.click("#link-plan");
    c.wait_for_path("/provisioning/plan");
    assert!(
        c.text_of("#plan-changes").ends_with(" 0"),
        "{}",
        c.text_of("#plan-changes")
    );
    tour.page(&c, "the sync plan");
    c.click("#apply-submit");
    c.wait_for_path("/provisioning/apply");
    assert!(c.exists("#applied"));
    tour.page(&c, "the applied sync plan");
    c.screenshot_for_docs("sync-plan.png");

    // A leak scan across every target.
    c.goto(&format!("{}/provisioning/leak-scan", server.base()));
    tour.page(&c, "the leak scans");
    c.click("#leak-scan-now");
    let run_path = pages::path_of(&c.url());
    assert!(run_path.starts_with("/provisioning/runs/"), "{run_path}");
    wait_for(&c, "#leaks-clean", 60);
    tour.page(&c, "the leak scan across every target");
    c.screenshot_for_docs("leak-scan-all.png");

    // -----------------------------------------------------------------------
    // 3. The school sees the accounts checked and the leak check clean.
    // -----------------------------------------------------------------------
    s.goto(&format!("{}{case_path}", server.base()));
    assert_eq!(s.text_of("#fictitious-number"), fict_number);
    assert!(s.text_of("#case-state").contains("Registrerat"));
    tour.page(&s, "the registered case page");
    // The school's own label, to tell its pupils apart: saved, shown in the case list
    // beside the fictitious name (the unit only).
    s.fill("#label", "3B, börjar i augusti");
    s.click("#label-save");
    s.wait_for_path(&format!("{case_path}?done=label"));
    assert!(s.exists("#case-notice"));
    s.screenshot_for_docs("case.png");
    s.goto(&format!("{}/cases", server.base()));
    let row = s.text_of("#cases-table tbody tr");
    assert!(row.contains("3B, börjar i augusti"), "{row}");
    assert!(
        row.contains(&fict_first) && row.contains(&fict_last),
        "{row}"
    );
    tour.page(&s, "the case list with the fictitious name and the label");
    s.screenshot_for_docs("cases.png");
    // A label with a personal number is refused and not shown back.
    s.goto(&format!("{}{case_path}", server.base()));
    s.fill("#label", &format!("elev {number}"));
    s.click("#label-save");
    s.wait_for_path(&format!("{case_path}?done=label-invalid"));
    assert!(!s.source().contains(&number));
    assert!(s.source().contains("3B, börjar i augusti"));
    s.click("#check-accounts");
    assert!(pages::path_of(&s.url()).starts_with(&format!("{case_path}/account-check/")));
    tour.page(&s, "the account check (maybe still running)");
    wait_for(&s, "#accounts-ok", 60);
    let accounts = s.text_of("#accounts-table");
    assert!(
        accounts.contains("ldap") && accounts.contains("oneroster"),
        "{accounts}"
    );
    assert!(!s.exists(".account-row .badge.bad"));
    tour.page(&s, "the account check");
    s.screenshot_for_docs("account-check.png");
    pages::assert_polling_works(&s, "run-status");
    assert!(s.exists("#accounts-ok"));
    s.goto(&format!("{}{case_path}", server.base()));
    s.click("#check-leaks");
    assert!(pages::path_of(&s.url()).starts_with(&format!("{case_path}/leak-scan/")));
    wait_for(&s, "#leaks-clean", 60);
    tour.page(&s, "the leak check of the case");
    s.screenshot_for_docs("leak-check.png");

    // -----------------------------------------------------------------------
    // 4. A review is recorded.
    // -----------------------------------------------------------------------
    s.click("nav a[href='/reviews']");
    s.wait_for_path("/reviews");
    tour.page(&s, "the reviews due");
    s.click("#reviews-all");
    s.wait_for_path("/reviews?all=1");
    // A review not yet due says how many days are left (an overdue one says how many
    // days late, never a negative number of days left).
    assert!(
        s.exists(".days-left") && !s.exists(".days-overdue"),
        "{}",
        s.source()
    );
    // The reminder column: the day of the last reminder, or a dash (read out as "no
    // reminder yet").
    assert!(
        s.text_of("#reviews-table thead").contains("Påminnelse"),
        "{}",
        s.source()
    );
    let reminded = s.execute(
        "return Array.from(document.querySelectorAll('#reviews-table td.reminded'))\
           .map(td => td.textContent.trim());",
        serde_json::json!([]),
    );
    let reminded: Vec<&str> = reminded
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!reminded.is_empty());
    for cell in &reminded {
        let day = cell.len() == 10
            && cell.chars().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        assert!(day || *cell == "–Ingen påminnelse än", "{reminded:?}");
    }
    tour.page(&s, "every open case's review");
    s.screenshot_for_docs("reviews.png");
    s.click(".review-link");
    s.wait_for_path(&format!("{case_path}/reviews"));
    assert!(s.exists("#reviews-none"));
    tour.page(&s, "the case's reviews");
    click_choice(&s, "#outcome-continue");
    s.click("#review-submit");
    s.wait_for_path(&format!("{case_path}/reviews?saved=1"));
    let reviews = s.text_of("#review-history");
    assert!(
        reviews.contains("sara.school") && reviews.contains("Fortsätt"),
        "{reviews}"
    );
    tour.page(&s, "the case's recorded review");
    s.screenshot_for_docs("case-reviews.png");

    // -----------------------------------------------------------------------
    // 5. Reveal: asked, approved by another person, read once after step-up.
    // -----------------------------------------------------------------------
    let a = tour.browser();
    first_sign_in(&a, &server, &alva, 0);
    a.click("nav a[href='/reveals']");
    a.wait_for_path("/reveals");
    assert!(a.exists("#pending-none"));
    tour.page(&a, "the reveal requests (none)");
    a.fill("#fictitious_number", &fict_number);
    a.fill("#purpose", "Begäran om registerutdrag från vårdnadshavare");
    a.click("#reveal-request-submit");
    let reveal_path = pages::path_of(&a.url());
    assert!(reveal_path.starts_with("/reveals/"), "{reveal_path}");
    assert!(a.text_of("#reveal-state").contains("Väntar"));
    assert!(!a.exists("#reveal-read"));
    tour.page(&a, "one's own pending request");
    // Nobody is offered their own request.
    a.goto(&format!("{}/reveals", server.base()));
    assert!(a.exists("#pending-none"));
    assert!(a.exists(".mine-link"));

    let b = tour.browser();
    first_sign_in(&b, &server, &bert, 0);
    // The approver's start page: one request waiting for a decision.
    let task = b.text_of("#tasks .task[data-kind='reveals-to-decide']");
    assert!(task.contains('1'), "{task}");
    tour.page(&b, "the approver's start page");
    b.screenshot_for_docs("start-approver.png");
    b.click("#tasks .task[data-kind='reveals-to-decide'] a");
    b.wait_for_path("/reveals");
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('#pending .request').length;",
            serde_json::json!([])
        ),
        serde_json::json!(1)
    );
    assert!(b.text_of("#pending").contains("alva.approver"));
    tour.page(&b, "the pending reveal requests");
    b.screenshot_for_docs("reveals.png");
    // Deciding needs the second factor again.
    b.click("#pending .approve");
    b.wait_for_path("/step-up?next=/reveals");
    b.fill("#code", &totp(&bert.secret, 1));
    b.click("#step-up-submit");
    b.wait_for_path("/reveals");
    b.click("#pending .approve");
    b.wait_for_path("/reveals?done=approved");
    assert!(b.exists("#pending-none"));

    // The requester reads it: the second factor first.
    a.goto(&format!("{}{reveal_path}", server.base()));
    assert!(a.text_of("#reveal-state").contains("Godkänd"));
    tour.page(&a, "one's own approved request");
    a.click("#reveal-read");
    a.wait_for_path(&format!("/step-up?next={reveal_path}"));
    assert!(!a.source().contains(REAL_LAST));
    a.fill("#code", &totp(&alva.secret, 1));
    a.click("#step-up-submit");
    a.wait_for_path(&reveal_path);
    a.click("#reveal-read");
    a.wait_for_path(&format!("{reveal_path}/read"));
    let revealed = a.text_of("#revealed-identity");
    assert!(
        revealed.contains(REAL_FIRST) && revealed.contains(REAL_LAST) && revealed.contains(&number),
        "{revealed}"
    );
    tour.page(&a, "the revealed identity");
    // The second read is refused.
    a.goto(&format!("{}{reveal_path}", server.base()));
    assert!(a.text_of("#reveal-state").contains("Läst"));
    assert!(!a.exists("#reveal-read"));
    post_from_page(&a, &format!("{reveal_path}/read"));
    a.wait_for_path(&format!("{reveal_path}/read"));
    assert!(a.exists("#message-heading"));
    let refused = a.source();
    assert!(!refused.contains(REAL_LAST) && !refused.contains(&number));
    tour.page(&a, "the refused second read");

    // -----------------------------------------------------------------------
    // 6. The auditor: the trail, filtered, and the chain verified.
    // -----------------------------------------------------------------------
    let d = tour.browser();
    first_sign_in(&d, &server, &dora, 0);
    d.click("nav a[href='/audit']");
    d.wait_for_path("/audit");
    tour.page(&d, "the audit trail");
    d.fill("#action", "reveal.read");
    d.click("#filter-submit");
    assert!(d.url().contains("action=reveal.read"));
    assert_eq!(
        d.execute("return document.querySelectorAll(\"tr.event[data-action='reveal.read'][data-outcome='ok']\").length;", serde_json::json!([])),
        serde_json::json!(1),
        "the one read"
    );
    assert_eq!(
        d.execute(
            "return document.querySelectorAll(\"tr.event[data-outcome='denied']\").length;",
            serde_json::json!([])
        ),
        serde_json::json!(1)
    );
    tour.page(&d, "the audit trail filtered by action");
    d.screenshot_for_docs("audit.png");
    d.click("#filter-clear");
    d.fill("#case", &case_id);
    d.fill("#actor", "sara.school");
    d.click("#filter-submit");
    let events = d.text_of("#events");
    assert!(
        events.contains("case.read-identity") && events.contains("plan.write"),
        "{events}"
    );
    tour.page(&d, "the audit trail filtered by case and actor");
    d.click("#verify-chain");
    d.wait_for_path("/audit/verify");
    assert!(d.exists("#verify-ok"), "{}", d.text_of("#verify-result"));
    tour.page(&d, "the verified chain");
    d.screenshot_for_docs("audit-verify.png");

    // No real identity in any title or URL visited, nor in the server's log.
    tour.assert_no_real_identity();
    let log = server.log();
    for real in [REAL_FIRST, REAL_LAST, number.as_str(), dashed.as_str()] {
        assert!(!log.contains(real), "the log holds a real value");
    }
    assert!(tour.pages() >= 40, "{}", tour.pages());
}

/// Every page authorizes with the one Authorizer: another unit's school, the central
/// administrator, the auditor and an approver get exactly what the policies allow,
/// unknown and denied look alike, and a form post needs its CSRF token.
#[test]
fn the_pages_ask_the_authorizer() {
    let server = Server::start(PROVISIONING_CONFIG);
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let olle = server.add_user("olle.school", &["school"], &["skola-2"]);
    let carl = server.add_user("carl.admin", &["central-admin"], &[]);
    let alva = server.add_user("alva.approver", &["approver"], &[]);
    let dora = server.add_user("dora.auditor", &["auditor"], &[]);
    let number = se_personnummer(2014, 11, 2, 731);

    // Sara opens a case.
    let s = web::Browser::start();
    first_sign_in(&s, &server, &sara, 0);
    s.goto(&format!("{}/cases/new", server.base()));
    s.fill("#personal_number", &number);
    s.fill("#first_name", REAL_FIRST);
    s.fill("#last_name", REAL_LAST);
    s.fill("#birth_date", "2014-11-02");
    s.click("#case-open-submit");
    let case_path = pages::path_of(&s.url());
    let case_id = case_path.trim_start_matches("/cases/").to_owned();
    assert_eq!(case_id.len(), 36);
    let sara = Session::of(&server, s);
    let olle = Session::sign_in(&server, &olle);
    let carl = Session::sign_in(&server, &carl);
    let alva = Session::sign_in(&server, &alva);
    let dora = Session::sign_in(&server, &dora);

    // The school sees its own case and the real identity on request.
    assert_eq!(sara.get(&case_path).status, 200);
    let shown = sara.get(&format!("{case_path}?show=identity")).text();
    assert!(shown.contains(REAL_LAST) && shown.contains(&number));

    // Another unit's school: not in the list, and the case "does not exist".
    assert!(!olle.get("/cases").text().contains(&case_id));
    for path in [
        case_path.clone(),
        format!("{case_path}?show=identity"),
        format!("{case_path}/plan"),
        format!("{case_path}/decision"),
        format!("{case_path}/fictitious"),
        format!("{case_path}/guardians/1"),
        format!("{case_path}/order"),
        format!("{case_path}/staff-told"),
        format!("{case_path}/reviews"),
    ] {
        let r = olle.get(&path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains(REAL_LAST), "{path}");
    }
    let r = olle.post(
        &format!("{case_path}/plan"),
        "information_handling=x&platforms=y",
    );
    assert_eq!(r.status, 404);
    // Unknown ids look the same.
    assert_eq!(olle.get("/cases/not-a-case").status, 404);
    assert_eq!(
        olle.get("/cases/7b0c3b8e-3a43-4a4a-9d0e-6a4d1b2c3d4e")
            .status,
        404
    );

    // The central administrator: metadata, never the identity or the plan.
    let page = carl.get(&case_path).text();
    assert!(page.contains(&case_id[..8]) && !page.contains("show-identity"));
    let page = carl.get(&format!("{case_path}?show=identity"));
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(REAL_LAST) && !page.text().contains(&number));
    assert_eq!(carl.get(&format!("{case_path}/plan")).status, 404);
    assert_eq!(carl.get("/orders").status, 200);
    assert_eq!(carl.get("/audit").status, 403);
    assert_eq!(carl.get("/reveals").status, 403);
    assert_eq!(carl.get("/orders/not-an-order").status, 404);

    // The auditor: the trail only.
    assert_eq!(dora.get("/audit").status, 200);
    assert!(!dora.get("/audit").text().contains(REAL_LAST));
    assert_eq!(dora.get("/cases").status, 403);
    assert_eq!(dora.get(&case_path).status, 404);
    assert_eq!(dora.get("/orders").status, 403);
    assert_eq!(dora.get("/provisioning").status, 403);

    // The school may not reach the municipality's pages.
    for path in [
        "/orders",
        "/provisioning",
        "/provisioning/targets",
        "/audit",
    ] {
        assert_eq!(sara.get(path).status, 403, "{path}");
    }

    // An approver asks (by case id) and may not decide their own request.
    let r = alva.post(
        "/reveals",
        &format!("case_id={case_id}&purpose=Registerutdrag"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let reveal_path = r.header("location").unwrap().to_owned();
    let reveal_id = reveal_path.trim_start_matches("/reveals/").to_owned();
    assert!(!alva
        .get("/reveals")
        .text()
        .contains(&format!("/reveals/{reveal_id}/approve")));
    assert_eq!(alva.post(&format!("{reveal_path}/approve"), "").status, 404);
    // Reading before approval is refused (after the step-up the read is checked).
    assert_eq!(alva.post(&format!("{reveal_path}/read"), "").status, 303);
    // Another person's request page does not exist for somebody else.
    assert_eq!(olle.get(&reveal_path).status, 404);

    // CSRF: no token, a wrong token, or a cross-site origin: 403, nothing changes.
    let no_token = sara.post_raw(&format!("{case_path}/plan"), "information_handling=x", &[]);
    assert_eq!(no_token.status, 403);
    let wrong = sara.post_raw(
        &format!("{case_path}/plan"),
        "csrf=wrong&information_handling=x",
        &[],
    );
    assert_eq!(wrong.status, 403);
    let cross = sara.post_raw(
        &format!("{case_path}/plan"),
        &format!("csrf={}&information_handling=x", sara.csrf),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(cross.status, 403);
    assert!(sara
        .get(&format!("{case_path}/plan"))
        .text()
        .contains("plan-no-history"));

    // Signed out: every page sends to the sign-in.
    let r = server.request("GET", &case_path, &[], None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/signin"));
}

/// A job that fails shows on the provisioning page with its reason, and can be tried
/// again. The routine's forms are posted here without a browser (the same forms).
#[test]
fn failed_jobs_show_their_reasons() {
    let server = Server::start(
        "\n[provisioning]\npoll_interval_ms = 200\nmax_attempts = 1\nreconcile_interval_secs = 0\n",
    );
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let carl = server.add_user("carl.admin", &["central-admin"], &[]);
    pages::add_dead_ldap_target(&server, fiktiv_tests::free_port().unwrap());
    let sara = Session::sign_in(&server, &sara);
    let number = se_personnummer(2014, 5, 20, 317);
    let r = sara.post(
        "/cases",
        &format!(
            "unit=skola-1&country=se&personal_number={number}&first_name={REAL_FIRST}\
             &last_name={REAL_LAST}&birth_date=2014-05-20"
        ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let case_path = r.header("location").unwrap().to_owned();
    for (path, body) in [
        ("plan", "information_handling=Inga+bilder&platforms=Unikum"),
        ("decision", "decision=fictitious-user"),
        (
            "fictitious",
            "first_name=Maja&last_name=Berg&birth_date=2014-08-08",
        ),
        ("order", "groups=4B&platforms=Unikum"),
    ] {
        let r = sara.post(&format!("{case_path}/{path}"), body);
        assert_eq!(r.status, 303, "{path}: {}", r.text());
    }
    let c = web::Browser::start();
    first_sign_in(&c, &server, &carl, 0);
    c.goto(&format!("{}/orders", server.base()));
    c.click(".order-link");
    c.click("#register-submit");
    assert!(c.url().ends_with("?registered=1"));

    let mut tour = Tour::new(vec![REAL_FIRST.into(), REAL_LAST.into(), number.clone()]);
    // The dead target's job fails and the other target's job is done; under load the
    // second can come later than the first, so wait for both. The page reads the
    // per-target counts before the list of failed jobs: a job that fails in between
    // is listed while its target's count still shows it running, so wait for the count
    // too.
    pages::wait_until(&c, &server, "/provisioning", |b| {
        b.exists("#failed-table")
            && b.exists(".target-row[data-target='oneroster'] .jobs-done")
            && b.text_of(".target-row[data-target='oneroster'] .jobs-done")
                .contains('1')
            && b.exists(".target-row[data-target='ldap'] .jobs-failed")
            && b.text_of(".target-row[data-target='ldap'] .jobs-failed")
                .contains('1')
    });
    let failed = c.text_of("#failed-table");
    assert!(failed.contains("ldap"), "{failed}");
    // The alert of the job that gave up, in the reader's language (the stored English
    // detail reads "gave up after ..."), on the provisioning page and on the school's
    // case page, where whoever may read the case sees its open alerts.
    let alerts = c.text_of("#alerts");
    assert!(
        alerts.contains("Jobbet gav upp efter 1 försök")
            || alerts.contains("The job gave up after 1 attempts"),
        "{alerts}"
    );
    let page = sara.get(&case_path).text();
    let shown = page
        .split("id=\"case-alerts\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap_or_default();
    assert!(shown.contains("Jobbet gav upp efter 1 försök"), "{page}");
    assert!(shown.contains("data-kind=\"job-failed\""), "{shown}");
    assert!(!shown.contains(REAL_LAST) && !shown.contains(&number));
    let reason = c.text_of("#failed-table td .detail");
    assert!(!reason.trim().is_empty());
    assert!(!failed.contains(REAL_LAST) && !failed.contains(&number));
    assert!(c
        .text_of(".target-row[data-target='ldap'] .jobs-failed")
        .contains('1'));
    assert!(c
        .text_of(".target-row[data-target='oneroster'] .jobs-done")
        .contains('1'));
    tour.page(&c, "the provisioning status with a failed job");
    c.screenshot_for_docs("provisioning-failed.png");
    c.click("#failed-table button");
    c.wait_for_path("/provisioning?done=retry");
    tour.page(&c, "the provisioning status after a retry");
    // The test of the dead target says what is wrong.
    c.goto(&format!("{}/provisioning/targets", server.base()));
    c.click("#test-ldap");
    assert!(c.exists("#test-failed"));
    tour.page(&c, "a failed connectivity test");
    tour.assert_no_real_identity();
}

/// Ending a case is its own step: the page says what happens next (the accounts, how
/// long each record class is kept), refuses a missing reason and a leaving date in the
/// future without ending anything, and ends the case with the reason and the day the
/// pupil left. The case page then shows why, when, and the retention dates; another
/// unit's school cannot reach the page.
#[test]
fn ending_a_case_is_its_own_step() {
    let server = Server::start("");
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let olle = server.add_user("olle.school", &["school"], &["skola-2"]);
    let number = se_personnummer(2014, 11, 2, 731);
    let s = web::Browser::start();
    first_sign_in(&s, &server, &sara, 0);
    s.goto(&format!("{}/cases/new", server.base()));
    s.fill("#personal_number", &number);
    s.fill("#first_name", REAL_FIRST);
    s.fill("#last_name", REAL_LAST);
    s.fill("#birth_date", "2014-11-02");
    s.click("#case-open-submit");
    let case_path = pages::path_of(&s.url());
    let olle = Session::sign_in(&server, &olle);
    assert_eq!(olle.get(&format!("{case_path}/end")).status, 404);
    assert_eq!(
        olle.post(&format!("{case_path}/end"), "reason=left-school")
            .status,
        404
    );

    s.click("#link-end");
    assert!(s.url().ends_with(&format!("{case_path}/end")));
    // What happens, before anything is done: the accounts and the retention schedule.
    assert!(
        s.text_of("#end-accounts").contains("30"),
        "{}",
        s.text_of("#end-accounts")
    );
    assert!(s.exists("#end-identity") && s.exists("#end-plan") && s.exists("#end-records"));
    s.assert_accessible("the end page");
    s.screenshot_for_docs("end.png");
    // No reason: refused, the case stays open.
    s.click("#end-submit");
    assert!(s.exists("#form-errors"));
    s.assert_accessible("the end page with an error");
    // A leaving date in the future: refused, nothing ended.
    click_choice(&s, "#reason-left-school");
    s.fill("#leaving_date", "2999-01-01");
    s.click("#end-submit");
    assert!(s.exists("#form-errors"));
    assert!(s.source().contains("2999-01-01"), "what was typed stays");
    s.goto(&format!("{}{case_path}", server.base()));
    assert!(!s.exists("#case-ended"));
    // Ended, with the reason and the day.
    s.click("#link-end");
    click_choice(&s, "#reason-left-school");
    s.fill("#leaving_date", "");
    s.click("#end-submit");
    assert!(s.url().ends_with("?done=ended"), "{}", s.url());
    let ended = s.text_of("#case-ended");
    assert!(ended.contains("Eleven har slutat på skolan"), "{ended}");
    for id in ["#shred-identity", "#shred-plan", "#shred-records"] {
        let d = s.text_of(id);
        assert!(d.len() == 10 && d.starts_with("20"), "{id}: {d}");
    }
    assert!(!s.exists("#link-end"));
    s.assert_accessible("the ended case");
    let page = s.source();
    assert!(!page.contains(REAL_LAST) && !page.contains(&number));
}

/// The right-of-access report: after the second factor is entered again, it states what
/// is held (the real identity among it), and lists every read of the real identity from
/// the audit trail (the school's case page, and this report itself, which the next
/// report lists too); nothing of another case. It prints to PDF with print styles.
#[test]
fn the_access_report_lists_every_read_of_the_real_identity() {
    let server = Server::start("");
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let s = web::Browser::start();
    first_sign_in(&s, &server, &sara, 0);
    let open = |number: &str, first: &str, last: &str, birth: &str| {
        s.goto(&format!("{}/cases/new", server.base()));
        s.fill("#personal_number", number);
        s.fill("#first_name", first);
        s.fill("#last_name", last);
        s.fill("#birth_date", birth);
        s.click("#case-open-submit");
        pages::path_of(&s.url())
    };
    let other_number = se_personnummer(2013, 4, 1, 218);
    let _other = open(&other_number, "Annan", "Elevsdotter", "2013-04-01");
    let number = se_personnummer(2014, 11, 2, 731);
    let case_path = open(&number, REAL_FIRST, REAL_LAST, "2014-11-02");
    // One read on the case page.
    s.goto(&format!("{}{case_path}?show=identity", server.base()));
    assert!(s.source().contains(REAL_LAST));

    // The report asks for the second factor first.
    s.goto(&format!("{}{case_path}", server.base()));
    s.click("#link-access-report");
    s.wait_for_path(&format!("/step-up?next={case_path}/access-report"));
    assert!(!s.source().contains(REAL_LAST));
    s.fill("#code", &totp(&sara.secret, 1));
    s.click("#step-up-submit");
    s.wait_for_path(&format!("{case_path}/access-report"));
    let report = s.text_of("#access-report");
    assert!(
        report.contains(REAL_LAST) && report.contains(&number),
        "{report}"
    );
    // Nothing of the other case.
    assert!(!report.contains("Elevsdotter") && !report.contains(&other_number));
    let rows = s.execute(
        "return Array.from(document.querySelectorAll('#report-accesses .access-row'))\
         .map(r => r.innerText);",
        serde_json::json!([]),
    );
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("sara.school") && rows[0].contains("Skolans ärendesida"),
        "{rows:?}"
    );
    assert!(rows[1].contains("Registerutdrag"), "{rows:?}");
    s.assert_accessible("the access report");
    s.screenshot_for_docs("access-report.png");
    let pdf = s.print_pdf();
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert!(pdf.len() > 1000);
    // The printed document, as a guardian gets it: its text holds every access row and
    // nothing of the other case, and its first page turns into an image.
    let printed = pages::pdf_text_and_png(&pdf);
    assert!(
        printed.text.contains("sara.school")
            && printed.text.contains("Registerutdrag")
            && printed.text.contains(REAL_LAST),
        "{}",
        printed.text
    );
    assert!(
        !printed.text.contains("Elevsdotter") && !printed.text.contains(&other_number),
        "another case in the printed report"
    );
    assert!(printed.png.starts_with(b"\x89PNG\r\n\x1a\n") && printed.png.len() > 10_000);
    if std::env::var("FIKTIV_SCREENSHOTS").as_deref() == Ok("1") {
        std::fs::write(
            web::workspace_root().join("docs/screenshots/access-report-printed.png"),
            &printed.png,
        )
        .unwrap();
    }

    // The next report lists this one too.
    s.goto(&format!("{}{case_path}/access-report", server.base()));
    let n = s.execute(
        "return document.querySelectorAll('#report-accesses .access-row').length;",
        serde_json::json!([]),
    );
    assert_eq!(n, serde_json::json!(3));
    // Each report is in the audit trail.
    let reports = server
        .audit()
        .iter()
        .filter(|(actor, action, _, _)| {
            actor == "staff:sara.school" && action == "case.access-report"
        })
        .count();
    assert_eq!(reports, 2);
}

/// Registering a Norwegian pupil: the page says which individual numbers the number
/// policy allows for the pupil's birth year (a refusal then needs no guessing).
#[test]
fn the_registration_of_a_norwegian_pupil_names_the_allowed_individual_numbers() {
    let server = Server::start("");
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let carl = server.add_user("carl.admin", &["central-admin"], &[]);
    let sara = Session::sign_in(&server, &sara);
    let number =
        crate::support::api::no_number(chrono::NaiveDate::from_ymd_opt(2014, 11, 20).unwrap());
    let r = sara.post(
        "/cases",
        &format!(
            "unit=skola-1&country=no&personal_number={number}&first_name={REAL_FIRST}\
             &last_name={REAL_LAST}&birth_date=2014-11-20"
        ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let case_path = r.header("location").unwrap().to_owned();
    for (path, body) in [
        ("plan", "information_handling=Inga+bilder&platforms=Unikum"),
        ("decision", "decision=fictitious-user"),
        (
            "fictitious",
            "first_name=Nora&last_name=Hansen&birth_date=2014-04-04",
        ),
        ("order", "groups=4B&platforms=Unikum"),
    ] {
        let r = sara.post(&format!("{case_path}/{path}"), body);
        assert_eq!(r.status, 303, "{path}: {}", r.text());
    }
    let carl = Session::sign_in(&server, &carl);
    let queue = carl.get("/orders").text();
    let order_path = queue
        .split("href=\"/orders/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|id| format!("/orders/{id}"))
        .unwrap();
    let page = carl.get(&order_path).text();
    let hint = page
        .split("id=\"no-allowed\">")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .unwrap_or_default();
    // Born 2014: the century allows 500 to 999, and the default policy all of them.
    assert!(hint.contains("500–999"), "{hint}");
    assert!(!page.contains(REAL_LAST) && !page.contains(&number));
}

/// As askama writes text into HTML.
fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// A Swedish pupil ordered by `sara.school` and the order's registration page as
/// `carl.admin` sees it.
fn swedish_registration_page(server: &Server) -> String {
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let carl = server.add_user("carl.admin", &["central-admin"], &[]);
    let sara = Session::sign_in(server, &sara);
    let number = se_personnummer(2015, 3, 9, 123);
    let r = sara.post(
        "/cases",
        &format!(
            "unit=skola-1&country=se&personal_number={number}&first_name={REAL_FIRST}\
             &last_name={REAL_LAST}&birth_date={REAL_BIRTH}"
        ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let case_path = r.header("location").unwrap().to_owned();
    for (path, body) in [
        ("plan", "information_handling=Inga+bilder&platforms=Unikum"),
        ("decision", "decision=fictitious-user"),
        (
            "fictitious",
            &format!("first_name=Nora&last_name=Hansen&birth_date={FICT_BIRTH}"),
        ),
        ("order", "groups=4B&platforms=Unikum"),
    ] {
        let r = sara.post(&format!("{case_path}/{path}"), body);
        assert_eq!(r.status, 303, "{path}: {}", r.text());
    }
    let carl = Session::sign_in(server, &carl);
    let queue = carl.get("/orders").text();
    let order_path = queue
        .split("href=\"/orders/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|id| format!("/orders/{id}"))
        .unwrap();
    let page = carl.get(&order_path).text();
    assert!(!page.contains(REAL_LAST) && !page.contains(&number));
    page
}

/// The registration page says what the number scheme in force guarantees, in the
/// reader's language (`#number-guarantee`): under the default scheme that the check digit
/// fails on purpose, under `ss12000-temporary` that the number has letters; never the
/// other scheme's text, never a claim for the other country.
#[test]
fn the_registration_page_says_what_the_number_scheme_guarantees() {
    use fiktiv_app::i18n::{Catalog, Lang};
    let sv = Catalog::shared().unwrap().tr(Lang::Sv);
    let keys = [
        "register.guarantee-se-fail-luhn",
        "register.guarantee-se-pass-luhn",
        "register.guarantee-se-temporary",
        "register.guarantee-se-test-numbers",
        "register.guarantee-no-synthetic",
    ];
    let dir = tempfile::tempdir().unwrap();
    let ranges = pages::number_ranges_with(dir.path(), "ss12000-temporary");
    for (config, want) in [
        (String::new(), "register.guarantee-se-fail-luhn"),
        (
            format!("\n[policies]\nnumber_ranges = \"{}\"\n", ranges.display()),
            "register.guarantee-se-temporary",
        ),
    ] {
        let server = Server::start(&config);
        let page = swedish_registration_page(&server);
        let shown = page
            .split("id=\"number-guarantee\">")
            .nth(1)
            .and_then(|s| s.split("</p>").next())
            .unwrap_or_else(|| panic!("no #number-guarantee: {page}"));
        let text = sv.get(want).unwrap();
        assert!(!text.is_empty());
        assert_eq!(shown, html_escaped(text), "{want}");
        for other in keys.iter().filter(|k| **k != want) {
            assert!(
                !page.contains(&html_escaped(sv.get(other).unwrap())),
                "{want}: the page also says {other}"
            );
        }
    }
}

/// A leak scan that finds the real pupil, as the central administrator reads it: the run
/// page says not clean and shows the place with its rule and the attribute names, and
/// what each target read (the stray file too); the provisioning page shows the leak
/// alert with its place. All in Swedish, from the message catalogue; never a value.
#[test]
fn a_leak_found_is_shown_with_its_rule_attributes_and_scope() {
    use fiktiv_app::i18n::{Catalog, Lang};
    use std::time::{Duration, Instant};
    let sv = Catalog::shared().unwrap().tr(Lang::Sv);
    let t = |k: &str| html_escaped(sv.get(k).unwrap_or_else(|| panic!("no {k}")));
    let server = Server::start(PROVISIONING_CONFIG);
    let number = se_personnummer(2015, 3, 9, 123);
    let short = format!("{}-{}", &number[2..8], &number[8..]);
    let case = pages::open_case_by_api(
        &server, "skola-1", &number, REAL_FIRST, REAL_LAST, REAL_BIRTH,
    );
    // A copy of the real pupil left in the roster folder beside Fiktiv's files.
    let roster = server.dir.path().join("data/oneroster");
    std::fs::create_dir_all(&roster).unwrap();
    std::fs::write(
        roster.join("export.txt"),
        format!("elev,personnummer,klass\n{REAL_FIRST} {REAL_LAST},{short},3B\n"),
    )
    .unwrap();
    let carl = server.add_user("carl.admin", &["central-admin"], &[]);
    let carl = Session::sign_in(&server, &carl);
    let r = carl.post("/provisioning/leak-scan", "");
    assert_eq!(r.status, 303, "{}", r.text());
    let run_path = r.header("location").unwrap().to_owned();
    assert!(run_path.starts_with("/provisioning/runs/"), "{run_path}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let page = loop {
        let page = carl.get(&run_path).text();
        if page.contains("id=\"leaks-not-clean\"") || page.contains("id=\"leaks-clean\"") {
            break page;
        }
        assert!(Instant::now() < deadline, "the scan did not end: {page}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for value in [
        REAL_FIRST,
        REAL_LAST,
        number.as_str(),
        &number[2..],
        short.as_str(),
    ] {
        assert!(!page.contains(value), "the run page shows a real value");
    }
    assert!(page.contains("id=\"leaks-not-clean\""), "{page}");
    assert!(page.contains(&t("leak.not-clean")), "{page}");
    assert!(page.contains(&t("leak.status-found")), "{page}");
    // The place: target and locator, the rule in Swedish, the attribute names.
    let place = |rule: &str| {
        format!(
            "<span class=\"mono leak-place\" data-rule=\"{rule}\">oneroster: export.txt:row 2</span> · {} · {} <span class=\"mono\">",
            t(&format!("leak.rule-{rule}")),
            t("leak.attributes"),
        )
    };
    let number_place = format!("{}export.txt.personnummer</span>", place("personal-number"));
    assert!(page.contains(&number_place), "{page}");
    let name_place = page
        .split(&place("full-name"))
        .nth(1)
        .and_then(|s| s.split("</span>").next())
        .unwrap_or_else(|| panic!("no full-name place: {page}"));
    assert!(name_place.contains("export.txt.elev"), "{name_place}");
    // What the roster target read: every file of the folder, the stray one too.
    assert!(page.contains(&t("leak.scope")), "{page}");
    let scope = page
        .split("<td class=\"leak-scope\">")
        .nth(1)
        .and_then(|s| s.split("</td>").next())
        .unwrap_or_else(|| panic!("no scope: {page}"));
    assert!(
        scope.contains("<span class=\"mono\">export.txt</span>"),
        "{scope}"
    );

    // The alert on the provisioning page: its kind and its place, in Swedish.
    let overview = carl.get("/provisioning").text();
    let alert = overview
        .split("<li class=\"alert\" data-kind=\"leak-found\">")
        .nth(1)
        .and_then(|s| s.split("</li>").next())
        .unwrap_or_else(|| panic!("no leak alert: {overview}"));
    assert!(
        alert.contains(&t("provisioning.alert-leak-found")),
        "{alert}"
    );
    let detail = t("provisioning.alert-detail-leak-found")
        .replace("{n}", "1")
        .replace("{at}", "oneroster:export.txt:row 2");
    assert!(alert.contains(&detail), "{alert}");
    assert!(alert.contains(&case[..8]), "{alert}");
    for value in [
        REAL_FIRST,
        REAL_LAST,
        number.as_str(),
        &number[2..],
        short.as_str(),
    ] {
        assert!(!overview.contains(value), "the overview shows a real value");
    }
}
