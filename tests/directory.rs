//! The directory (annuaire): `mes directory import` of the ANS extract (text
//! or zip; malformed lines reported, the rest imported; a new import replaces
//! the old one), the professionals' search API and vCard export, and the
//! name a patient sees for a professional of another operator.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::io::Write;

use browser::{Browser, Viewport};
use common::{Db, Instance, Server, pro_get};

const HEADER: &str = "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION|L3COMPLEMENTDISTRIBUTION|L4NUMEROVOIE|L4COMPLEMENTNUMEROVOIE|NL4TYPEVOIE|L4LIBELLEVOIE|L5LIEUDITMENTION|L6LIGNEACHEMINEMENT|Code postal|Département|Pays";
const REMOTE: &str = "helene.durand@operateur2.mes.test";
const INS: &str = "279035121518989";
const PATIENT: &str = "279035121518989@patient.mes.test";
const PATIENT_PW: &str = "jardin des plantes 7";

/// One line of the extract: a person's mailbox.
fn person(address: &str, last: &str, first: &str, profession: &str) -> String {
    let mut f = vec![""; 31];
    f[0] = "PER";
    f[1] = address;
    f[2] = "8";
    f[4] = "810000000001";
    f[8] = "DR";
    f[9] = last;
    f[10] = first;
    f[14] = profession;
    f[16] = "Cardiologie";
    f[18] = "Clinique du Parc";
    f[27] = "69006 LYON";
    f.join("|")
}

fn import(instance: &Instance, file: &std::path::Path) -> (bool, String, String) {
    common::mes(
        &[
            "--config",
            instance.config.to_str().unwrap(),
            "directory",
            "import",
            file.to_str().unwrap(),
        ],
        None,
    )
}

async fn import_search_and_replace(db: Db) {
    let instance = Instance::new(db).await;
    let pro = common::professional(&instance, "dr.martin", "Dr Paul Martin");
    let first = instance
        .root()
        .join("Extraction_Correspondance_MSSante_202612010000.txt");
    let text = [
        HEADER.to_string(),
        person(REMOTE, "DURAND", "Hélène", "Médecin"),
        person(
            "jacques.petit@chu-lyon.mssante.fr",
            "PETIT",
            "Jacques",
            "Infirmier",
        ),
        "PER|trop|court".to_string(),
        person("pas une adresse", "X", "Y", "Médecin"),
        format!(
            "{}|",
            person("ORG.Secretariat@Clinique.mssante.fr", "", "", "")
        ),
    ]
    .join("\r\n");
    std::fs::write(&first, text + "\r\n").unwrap();
    let (ok, out, err) = import(&instance, &first);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 3 entries from 5 lines (2 malformed)"),
        "{out}"
    );
    assert!(err.contains("line 4: 3 columns instead of 31"), "{err}");
    assert!(err.contains("line 5: invalid mailbox address"), "{err}");
    assert!(
        !err.contains("pas une adresse"),
        "lines are not echoed: {err}"
    );

    let server = instance.start();
    let (status, body) = pro_get(
        &server,
        &instance,
        &pro,
        "/api/pro/v1/directory?q=medecin%20durand",
    );
    assert_eq!(status, 200, "{body}");
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{body}");
    assert_eq!(entries[0]["address"], REMOTE);
    assert_eq!(entries[0]["profession"], "Médecin");
    assert_eq!(entries[0]["first_name"], "Hélène");
    let (_, body) = pro_get(&server, &instance, &pro, "/api/pro/v1/directory?q=lyon");
    assert_eq!(body["entries"].as_array().unwrap().len(), 3, "{body}");
    let (status, _) = pro_get(&server, &instance, &pro, "/api/pro/v1/directory?q=x");
    assert_eq!(status, 400, "a one-letter search is refused");
    let vcf = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            instance.cert("ca.pem").to_str().unwrap(),
            "--cert",
            pro.cert.to_str().unwrap(),
            "--key",
            pro.key.to_str().unwrap(),
            &format!(
                "https://localhost:{}/api/pro/v1/directory.vcf?q=petit",
                server.addr("https").port()
            ),
        ])
        .output()
        .unwrap();
    let vcf = String::from_utf8_lossy(&vcf.stdout);
    assert!(vcf.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{vcf}");
    assert!(vcf.contains("FN:Jacques PETIT\r\n"), "{vcf}");
    assert!(vcf.contains("N:PETIT;Jacques;;DR;\r\n"), "{vcf}");
    assert!(
        vcf.contains("EMAIL;TYPE=work:jacques.petit@chu-lyon.mssante.fr\r\n"),
        "{vcf}"
    );
    assert!(vcf.contains("TITLE:Infirmier\r\n"), "{vcf}");
    assert_eq!(vcf.matches("BEGIN:VCARD").count(), 1, "{vcf}");
    // Without a professional's certificate or token: refused.
    let anonymous = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            instance.cert("ca.pem").to_str().unwrap(),
            &format!(
                "https://localhost:{}/api/pro/v1/directory?q=petit",
                server.addr("https").port()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");

    // A new extract, zipped as published, replaces the old one whole.
    let zip_path = instance
        .root()
        .join("Extraction_Correspondance_MSSante.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        zip.start_file(
            "Extraction_Correspondance_MSSante_202612020000.txt",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        let text = format!(
            "{HEADER}\n{}\n",
            person(
                "anne.roux@chu-lyon.mssante.fr",
                "ROUX",
                "Anne",
                "Sage-femme"
            )
        );
        zip.write_all(text.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    let (ok, out, err) = import(&instance, &zip_path);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 1 entries from 1 lines (0 malformed)"),
        "{out}"
    );
    let (_, body) = pro_get(&server, &instance, &pro, "/api/pro/v1/directory?q=lyon");
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "the old extract is gone: {body}");
    assert_eq!(entries[0]["address"], "anne.roux@chu-lyon.mssante.fr");

    // A file that is not an extract leaves the directory as it was.
    let wrong = instance.root().join("autre.txt");
    std::fs::write(&wrong, "nom;prenom\nDURAND;Hélène\n").unwrap();
    let (ok, _, err) = import(&instance, &wrong);
    assert!(!ok && err.contains("header expected"), "{err}");
    let (_, body) = pro_get(&server, &instance, &pro, "/api/pro/v1/directory?q=roux");
    assert_eq!(body["entries"].as_array().unwrap().len(), 1, "{body}");
}

both_backends!(import_search_and_replace);

/// A professional of another operator writes to a patient: the patient sees
/// the directory's name and profession, marked "(annuaire)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_the_directory_name() {
    let instance = Instance::new(Db::Sqlite).await;
    let out = instance.run(
        &[
            "user",
            "add",
            PATIENT,
            "--kind",
            "patient",
            "--name",
            "Marie Martin",
        ],
        None,
    );
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("activation code: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no activation code in {out}"))
        .to_string();
    let extract = instance.root().join("annuaire.txt");
    std::fs::write(
        &extract,
        format!(
            "{HEADER}\n{}\n",
            person(REMOTE, "DURAND", "Hélène", "Cardiologue")
        ),
    )
    .unwrap();
    let (ok, _, err) = import(&instance, &extract);
    assert!(ok, "{err}");
    let server = instance.start();
    send_from_other_operator(&instance, &server);

    let b = Browser::start(&instance.cert("ca.pem"), Viewport::Phone).await;
    let url = format!("https://localhost:{}", server.addr("https").port());
    b.goto(&format!("{url}/activation")).await;
    b.fill("#login", INS).await;
    b.fill("#code", &code).await;
    b.fill("#password", PATIENT_PW).await;
    b.fill("#confirm", PATIENT_PW).await;
    b.navigate_by("main button[type=submit]").await;
    b.fill("#login", INS).await;
    b.fill("#password", PATIENT_PW).await;
    b.navigate_by("main button[type=submit]").await;
    b.goto(&format!("{url}/messagerie")).await;
    let text = b.main_text().await;
    assert!(text.contains("Hélène DURAND (annuaire)"), "{text}");
    assert!(text.contains("Cardiologue"), "{text}");
    b.check_accessibility("messagerie-annuaire").await;
    b.check_no_horizontal_scroll("messagerie-annuaire").await;
    b.navigate_by("ul.fils a").await;
    let text = b.main_text().await;
    assert!(text.contains("Hélène DURAND (annuaire)"), "{text}");
    b.check_accessibility("fil-annuaire").await;
}

/// One message from `REMOTE` over MX with the other operator's certificate.
fn send_from_other_operator(instance: &Instance, server: &Server) {
    let out = std::process::Command::new(common::MES)
        .args([
            "bench",
            "smtp",
            "--server",
            &server.addr("mx").to_string(),
            "--ca",
            instance.cert("ca.pem").to_str().unwrap(),
            "--cert",
            instance.cert("operator2.pem").to_str().unwrap(),
            "--key",
            instance.cert("operator2.key").to_str().unwrap(),
            "--from",
            REMOTE,
            "--to",
            PATIENT,
            "--connections",
            "1",
            "--messages",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
