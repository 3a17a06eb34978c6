"""The house check fails on each breach it names (scripts/test runs this first)."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import check_house  # noqa: E402


def tree(files: dict[str, str]) -> str:
    root = tempfile.mkdtemp()
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as file:
            file.write(text)
    return root


class House(unittest.TestCase):
    def test_a_tree_that_keeps_the_rules_passes(self):
        src = tree({"db/mod.rs": "", "customers/mod.rs": "use crate::db::Db;\n", "lib.rs": "use crate::web;\n"})
        self.assertEqual(check_house.breaches(src), [])

    def test_an_import_upwards_fails(self):
        src = tree({"db/mod.rs": "use crate::customers::Customers;\n", "customers/mod.rs": "use crate::db::Db;\n"})
        found = check_house.breaches(src)
        self.assertEqual(len(found), 1, found)
        self.assertIn("db names crate::customers, which is not below it", found[0])

    def test_a_long_file_db_in_web_and_a_module_without_a_layer_fail(self):
        long = "fn f() {}\n" * 451 + "#[cfg(test)]\nmod tests {}\n"
        src = tree({
            "customers/mod.rs": long,
            "web/page.rs": "fn f() { crate::db::users::find(); }\n",
            "gadgets.rs": "",
        })
        found = " | ".join(check_house.breaches(src))
        self.assertIn("customers/mod.rs: 451 lines before its tests", found)
        self.assertIn("web/page.rs: names db::", found)
        self.assertIn("module gadgets has no layer", found)

    def test_comments_do_not_count(self):
        src = tree({"web/page.rs": "// crate::db::users is not used here\n"})
        self.assertEqual(check_house.breaches(src), [])


if __name__ == "__main__":
    unittest.main()
