cairn.test/audit
3
OX49o57WH9S6fDx1SloJWz012MLgupeqiokfoFlbOQw=

— cairn.test 9v04JVIGn3L8NIihK0CseXNMlV9wPl/l6rfFVh7KP4NZr0a3wMHp7QTGmo0Ubpn/JaDVRYSD+baqULlX/8U252YB/w8=
