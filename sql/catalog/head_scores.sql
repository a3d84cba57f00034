-- Every score under the head $head.
SELECT score FROM scores WHERE head_version = $head;
