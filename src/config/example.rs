//! The commented configuration file `mes init` writes: every key, its
//! meaning and default.

/// Values `mes init` puts in a new configuration file.
#[derive(Debug, Clone)]
pub struct ExampleValues<'a> {
    /// Our host name.
    pub hostname: &'a str,
    /// Operator organisation name.
    pub operator: &'a str,
    /// Professional mail domain.
    pub domain: &'a str,
    /// Patient mail domain.
    pub patient_domain: &'a str,
    /// The DN of the second development operator, for the example whitelist.
    pub operator2_dn: &'a str,
    /// Our own operator DN, whitelisted for our own domains.
    pub own_dn: &'a str,
}

/// The commented configuration file written by `mes init`: every key, its meaning and default.
pub fn render_example(v: &ExampleValues<'_>) -> String {
    format!(
        r#"# MES configuration. Relative paths are taken from this file's folder.
# Every key is listed; commented keys show their default value.

# Our host name: SMTP greetings, Received headers, the server certificate's name.
hostname = "{hostname}"
# The operator's name (the organisation in our operator certificate).
operator = "{operator}"
# Folder of local state (the SQLite database by default).
data_dir = "data"
# Seconds open sessions get to finish after SIGTERM/SIGINT.
# shutdown_grace_secs = 20

[server]
# "development" (default) or "production": in production, `mes serve` and
# `mes config check` refuse the development PKI of `mes init`, a self-signed
# certificate, a trust anchor without a revocation list, and metrics on a
# public address (see certs/README.md).
# mode = "development"

[clients]
# What mail clients are told by autoconfiguration (Thunderbird autoconfig,
# Outlook autodiscover) and what `mes dns records` prints: the public names
# and ports (default: hostname and the listeners' ports; production: 993, 465, 587).
# imap_host = "{hostname}"
# smtp_host = "{hostname}"
# imaps_port = 993
# imap_port = 143
# submissions_port = 465
# submission_port = 587
# Public base URL of the webmail and APIs: the OAuth issuer of connected
# services (required in production; development: the Host a client used).
# web_url = "https://{hostname}"

[database]
# sqlite://PATH (default: DATA_DIR/mes.db, WAL, synchronous=FULL)
# or postgres://USER:PASSWORD@HOST/DB for several nodes and large operators.
# url = "postgres://mes@127.0.0.1/mes"
# max_connections = 16

[tls]
# Our certificate chain and key: presented by every listener and, when relaying,
# as our operator client certificate.
certificate = "certs/server.pem"
private_key = "certs/server.key"
# Certification authorities of the trust space (IGC-Santé in production).
trust_anchors = ["certs/ca.pem"]
# Certificate revocation lists, PEM or DER, one or more per issuing CA (in
# production the IGC-Santé CRLs, fetched by a scheduled job). A listed client
# certificate (MX, SASL EXTERNAL, professionals' API) or relay destination is
# refused at the handshake. With any list here, a certificate whose issuer has
# no list is refused too. Re-read every crl_reload_secs and on SIGHUP; a list
# that does not load keeps the previous ones (at startup it is an error).
# `mes pki revoke CERT.pem` adds a certificate to the development CA's list.
crl_files = ["certs/crl.pem"]
# crl_reload_secs = 300

[listen]
# One "ADDR:PORT" per listener; a listener whose key is absent is off.
# Production ports: mx 25, submission 587, submissions 465, imap 143, imaps 993, https 443.
mx = "127.0.0.1:2525"
submission = "127.0.0.1:2587"
submissions = "127.0.0.1:2465"
imap = "127.0.0.1:2143"
imaps = "127.0.0.1:2993"
https = "127.0.0.1:8443"
# Prometheus metrics and the /healthz, /readyz probes, plain HTTP, off when absent.
# Loopback only, unless metrics_public = true (no authentication: firewall it).
# metrics = "127.0.0.1:9464"
# metrics_public = false
# Behind a load balancer sending the PROXY protocol (v1 or v2, e.g. haproxy's
# `send-proxy-v2`): the listeners that expect its header, and the balancers'
# addresses (only their connections are read so; they must send one):
# proxy_protocol = ["mx", "submissions", "imaps", "https"]
# proxy_from = ["10.0.0.2"]

[smtp]
# max_message_size = 52428800        # octets, announced with SIZE
# max_recipients = 100
# max_connections_per_ip = 50
# max_connections = 2000
# mx_client_certificate = "required" # or "optional"
# command_timeout_secs = 300         # RFC 5321 4.5.3.2
# data_timeout_secs = 180
# session_timeout_secs = 3600
# auth_failures_before_lockout = 5      # per account from one IP address (others are not locked out)
# auth_ip_failures_before_lockout = 20  # per IP address, whatever the account
# auth_lockout_secs = 300               # kept in the database: shared by nodes, survives restarts
# Organisation mailboxes that named accounts may send as:
# [smtp.delegations]
# "secretariat@{domain}" = ["jean.dupont@{domain}"]

[imap]
# max_connections_per_ip = 100
# max_connections = 10000
# max_command_line = 65536           # octets per line outside literals, CRLF included (>= 8192)
# listing_cache_mb = 64             # memory for header FETCHes of large folders (~300 octets a message); 0: off
# login_timeout_secs = 60           # from connection to login, however slowly the client sends
# recheck_secs = 30                # a logged-in session rechecks its account (and an idling one its folder) this often

[quota]
# The storage quota (RFC 9208) of every account the operator gave none of its
# own with `mes user quota ADDRESS --storage 2G --messages 100000`, counting
# every message in all its folders, copies included. storage: octets, or with
# K, M, G or T (powers of 1024); messages: a count; "none": no limit. A full
# mailbox makes SMTP answer 452 4.2.2 (552 5.2.2 for a message larger than the
# whole quota), IMAP APPEND and COPY NO [OVERQUOTA], the patient space a
# message saying so; IMAP clients read usage and limits with GETQUOTAROOT.
# storage = "none"                   # e.g. "2G"
# messages = "none"                  # e.g. 100000

[https]
# max_connections_per_ip = 100
# max_connections = 10000
# header_read_timeout_secs = 30     # to receive a request's headers; also the longest idle keep-alive
# request_timeout_secs = 300        # a whole request, upload included, and its answer

[audit]
# The key that seals the audit trail (HMAC checkpoints of its head), kept
# outside the database: back it up with the certificates' keys.
# key_file = "certs/audit.key"
# checkpoint_secs = 300

[secrets]
# The key that encrypts the secrets the database keeps (professionals' TOTP
# secrets), kept outside the database: back it up apart from the database.
# key_file = "certs/secrets.key"

[relay]
# Delivery to the other operators: MX lookup, STARTTLS required, our operator certificate.
# routes = {{ "hopital-b.mes.test" = "127.0.0.1:3525" }}   # static routes, for tests and smart hosts
# dns = ["127.0.0.1:53"]                 # default: the system's resolv.conf
# mx_port = 25
# retry_schedule_secs = [120, 300, 900, 1800, 3600, 7200, 14400]
# expire_secs = 432000                   # 5 days, then a failure DSN
# delay_dsn_secs = 14400                 # 4 hours, then a delay DSN
# max_connections = 64
# max_connections_per_domain = 4
# timeout_secs = 60
# node_id = "node-1"                     # default: the machine's host name
# lease_secs = 300                       # a crashed node's queue rows go to the others after this

[notify]
# Content-free notices of new messages to patients' personal addresses, through a smarthost.
# smarthost = "smtp.example.test:587"
# starttls = true
# from = "Espace sante <ne-pas-repondre@mes.test>"
# window_secs = 900                      # at most one notice per patient per window
# reminder_interval_secs = 300           # how often agenda reminders (the day before, the day of) are looked for

[patients]
# max_attachment_size = 5242880          # PDF, JPEG, PNG, TIFF, TXT, RTF only
# session_idle_secs = 900
# session_max_secs = 43200                # absolute lifetime of a session (12 h), however active
# activation_valid_days = 30              # `mes user activation ADDRESS` issues a new code
# service_notifications_per_day = 10      # per connected service and patient (messages.notify)

[lifecycle]
# Spaces created by `mes provision FILE` (opt-out): informed, then open
# unless the patient opposed within the window.
# opposition_days = 42                    # six weeks from the information notice
# open_check_secs = 60                    # how often `mes serve` opens the spaces due,
#                                         # purges archives and ends representations at 18
# archive_years = 10                      # a closed space's content is kept (and may be
#                                         # reopened: mes reopen INS) this long, then purged

[access]
# Break the glass (emergency read of a record without the patient's authorisation):
# professions allowed, as name prefixes (case, accents, hyphens ignored) or RPPS codes.
# break_glass_professions = ["médecin", "infirmier", "sage-femme", "pharmacien"]
# break_glass_per_hour = 5               # per professional, all patients; 0: nobody
# break_glass_valid_secs = 3600          # reads allowed after one break-glass

[trust]
# Trust space domains and the subject DN of their operator certificate.
# The published XML whitelist is loaded with `mes trust import FILE.xml`, or
# refreshed by `mes serve` from a path or an https:// URL (a list that fails
# to fetch, parse or validate keeps the one in force):
# whitelist_url = "https://example.invalid/listeblanche.xml"
# refresh_secs = 3600
# A detached signature of the list (`openssl dgst -sha256 -sign key.pem`,
# RSA or ECDSA P-256), checked with this certificate's key; set, a list
# without a valid signature is refused (see certs/README.md):
# whitelist_signing_cert = "certs/whitelist-signer.pem"
# whitelist_signature_url = "https://example.invalid/listeblanche.xml.sig"
whitelist = [
  {{ domain = "{domain}", operator_dn = "{own_dn}" }},
  {{ domain = "{patient_domain}", operator_dn = "{own_dn}" }},
  {{ domain = "operateur2.mes.test", operator_dn = "{operator2_dn}" }},
]

[log]
# format = "text"                    # or "json"
# level = "info"
"#,
        hostname = v.hostname,
        operator = v.operator,
        domain = v.domain,
        patient_domain = v.patient_domain,
        // DNs may hold RFC 4514 escapes (`\,`): written as TOML basic strings.
        own_dn = toml_basic(v.own_dn),
        operator2_dn = toml_basic(v.operator2_dn),
    )
}

/// `text` escaped for the inside of a TOML basic string (`"…"`).
fn toml_basic(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
