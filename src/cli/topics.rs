//! `ponte topics`: list, describe, create and delete topics on the cluster that
//! `kafka_brokers` names.

use anyhow::Context as _;
use clap::Subcommand;

use super::table::{print_json, table};
use crate::admin::{Admin, TopicSpec};
use crate::config::Settings;
use crate::validate;

/// What to do with topics.
#[derive(Debug, Subcommand)]
pub(super) enum TopicsCommand {
    /// The cluster's topics.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A topic's partitions, leaders, replicas and in-sync replicas.
    Describe {
        /// The topic.
        topic: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Creates a topic.
    Create {
        /// The topic.
        topic: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Copies of each partition.
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
    },
    /// Deletes a topic.
    Delete {
        /// The topic.
        topic: String,
    },
}

/// Runs one `ponte topics` command.
pub(super) fn run(command: TopicsCommand, settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let admin = Admin::new(settings).context("cannot create the Kafka admin client")?;
    runtime.block_on(execute(command, &admin))
}

async fn execute(command: TopicsCommand, admin: &Admin) -> anyhow::Result<()> {
    match command {
        TopicsCommand::List { json } => {
            let topics = admin.topics().await?;
            if json {
                return print_json(&topics);
            }
            let mut listing = table(&["topic"]);
            topics.into_iter().for_each(|topic| {
                listing.add_row(vec![topic]);
            });
            out!("{listing}");
        }
        TopicsCommand::Describe { topic, json } => {
            validate::topic_name(&topic)?;
            let described = admin.describe(&topic).await?;
            if json {
                return print_json(&described);
            }
            let mut listing = table(&["partition", "leader", "replicas", "in-sync replicas"]);
            for p in &described.partitions {
                listing.add_row(vec![
                    p.partition.to_string(),
                    p.leader.to_string(),
                    ids(&p.replicas),
                    ids(&p.isr),
                ]);
            }
            out!("{listing}");
        }
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
        } => {
            validate::topic_name(&topic)?;
            let spec = TopicSpec {
                name: topic,
                partitions,
                replication_factor,
                configs: Vec::new(),
                validate_only: false,
            };
            admin.create(&spec).await?;
            out!(
                "created {} ({partitions} partitions, replication {replication_factor})",
                spec.name
            );
        }
        TopicsCommand::Delete { topic } => {
            validate::topic_name(&topic)?;
            admin.delete(&topic).await?;
            out!("deleted {topic}");
        }
    }
    Ok(())
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
