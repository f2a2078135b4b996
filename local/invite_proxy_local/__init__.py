"""The local run: template.yaml's API, functions and table on this machine, no Docker, no AWS.

Development tooling only; none of it ships in the Lambda artifacts.
"""
