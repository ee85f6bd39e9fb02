//! `mes queue`: the operator's view of the outbound queue.

use anyhow::bail;

use super::QueueCommand;
use crate::config::Config;
use crate::store::Store;
use crate::store::queue::QueueItem;

fn line(i: &QueueItem) -> String {
    format!(
        "{}\t{}\t{}\tattempts={}\tnext={}\t{}",
        i.id,
        i.status,
        i.recipient,
        i.attempts,
        i.next_attempt,
        i.last_error.as_deref().unwrap_or("")
    )
}

/// Runs `mes queue …`.
pub(super) async fn run(config: &Config, cmd: QueueCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.database_url, 2).await?;
    match cmd {
        QueueCommand::List { all } => {
            let items = store.queue_list(all).await?;
            for i in &items {
                println!("{}", line(i));
            }
            let (depth, age) = store.queue_depth().await?;
            println!("{depth} pending, oldest {age} s");
        }
        QueueCommand::Show { id } => {
            let Some(i) = store.queue_item(id).await? else {
                bail!("no queue row {id}");
            };
            let m = store.queued_message(i.message_id).await?;
            println!(
                "id: {}\nstatus: {}\nrecipient: {}\nsender: <{}>",
                i.id, i.status, i.recipient, m.mail_from
            );
            println!(
                "attempts: {}\nnext attempt: {}\ncreated: {}",
                i.attempts, i.next_attempt, i.created_at
            );
            println!("last error: {}", i.last_error.as_deref().unwrap_or("-"));
            println!("remote: {}", i.remote_mta.as_deref().unwrap_or("-"));
        }
        QueueCommand::Retry { id } => {
            if !store.queue_retry_now(id).await? {
                bail!("no pending queue row {id}");
            }
            println!("row {id} will be retried now");
        }
        QueueCommand::Delete { id } => {
            if !store.queue_delete(id).await? {
                bail!("no queue row {id}");
            }
            println!("row {id} removed");
        }
    }
    store.close().await;
    Ok(())
}
