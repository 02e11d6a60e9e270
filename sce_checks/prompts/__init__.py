"""Prompt templates, one module per kind of task. Wording is our own; the protocol (what is asked,
in which conversation, which reply format) follows the papers cited in each module."""
