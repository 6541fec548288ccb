"""Shared test configuration: the fixtures come from the crmcore.testing pytest plugin."""
