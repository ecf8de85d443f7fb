"""The database side: tables, migrations, the admin repository and the state loader."""
