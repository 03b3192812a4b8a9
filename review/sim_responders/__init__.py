"""The simulator's answers to review's job kinds (classification, info extraction, correction
drafts); the contract of a responder module is in pipelines/llm/simulator/responders/__init__.py."""
