"""The provider client: share a table on the provider machine and upload share i to node i."""
