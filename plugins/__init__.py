"""The plugins bundled with ganforge, registered through entry points like any third party."""
