"""What the behaviours share: the repository config file, comments made once, commands, language, links, templates."""
