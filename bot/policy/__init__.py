"""The company's rules: `Policy` owns every rule; `file` holds the policy file's models."""
