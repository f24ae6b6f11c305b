//! QEMU machines: what kind of machine a catalog entry makes and which storages, bridges and ISOs it
//! allows; what a request chose among them; the guest type and install medium of a machine; and the
//! static addresses handed out from an entry's pool.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Templates {
    Table,
    Kind,
    Nodes,
    Storages,
    Bridges,
    Isos,
    Ostype,
    IpPool,
    Gateway,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
    Storage,
    Bridge,
    Iso,
}

#[derive(DeriveIden)]
enum Machines {
    Table,
    Kind,
    InstallMedia,
}

#[derive(DeriveIden)]
enum AddressLeases {
    Table,
    Address,
    RequestId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let template_columns = [
            string(Templates::Kind).default("lxc").to_owned(),
            string(Templates::Nodes).default("").to_owned(),
            string(Templates::Storages).default("").to_owned(),
            string(Templates::Bridges).default("").to_owned(),
            text(Templates::Isos).default("").to_owned(),
            string(Templates::Ostype).default("l26").to_owned(),
            string_null(Templates::IpPool).to_owned(),
            string_null(Templates::Gateway).to_owned(),
        ];
        for mut column in template_columns {
            m.alter_table(Table::alter().table(Templates::Table).add_column(&mut column).to_owned()).await?;
        }
        for column in [Requests::Storage, Requests::Bridge, Requests::Iso] {
            m.alter_table(Table::alter().table(Requests::Table).add_column(string_null(column)).to_owned()).await?;
        }
        m.alter_table(
            Table::alter().table(Machines::Table).add_column(string(Machines::Kind).default("lxc")).to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Machines::Table).add_column(string_null(Machines::InstallMedia)).to_owned())
            .await?;
        // The address is the key: two requests can never hold the same one, whichever entry's pool it
        // came from; a request holds at most one.
        m.create_table(
            Table::create()
                .table(AddressLeases::Table)
                .col(string(AddressLeases::Address).primary_key())
                .col(big_integer_uniq(AddressLeases::RequestId))
                .col(timestamp_with_time_zone(AddressLeases::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(AddressLeases::Table, AddressLeases::RequestId)
                        .to(Requests::Table, Requests::Id),
                )
                .to_owned(),
        )
        .await
    }
}
