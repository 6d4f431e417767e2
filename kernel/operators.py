"""The ``Operator`` base class: a comparison usable in filters, views and expressions.

Operators arrive through the ``register_operators`` hook. The query contract's
``filter[field][op]=value``, a view's filters and the expression language's comparisons
(``=``, ``!=``, ``>``, ``in``, ``contains``, ``is null`` ...) all resolve to an operator by
name, so one implementation serves SQL (lists, row rules) and Python (create rules,
realtime fan-out, workflow conditions) alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from sqlalchemy.sql.elements import ColumnElement

#: How an operator's right-hand value is shaped:
#: ``scalar`` one value; ``list`` one or more values (``in``); ``pair`` exactly two
#: (``between``); ``flag`` a boolean (``is_null``).
ValueShape = Literal["scalar", "list", "pair", "flag"]


class Operator(ABC):
    """Base class of operators.

    Class attributes a subclass sets:

    - ``name``: the name in ``filter[field][<name>]``; unique across plugins.
    - ``label``: shown in the admin filter builder.
    - ``shape``: the :data:`ValueShape` of the right-hand value.
    - ``field_types``: names of field types this operator applies to in addition to the
      types that list it in their own ``operators``; ``frozenset()`` claims none.

    A field of type ``T`` supports operator ``o`` when ``o.name in T.operators`` or
    ``T.name in o.field_types``.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    shape: ClassVar[ValueShape] = "scalar"
    field_types: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        """The SQL condition ``left <op> right``.

        ``left`` is a column (or a bound value); ``right`` is a bound SQL value for
        ``scalar``, a bound array for ``list``, a tuple of two bound values for ``pair`` and
        a Python ``bool`` for ``flag``. Never render values into SQL text.
        """

    @abstractmethod
    def evaluate(self, left: Any, right: Any) -> bool:
        """The same condition on Python values (``right`` is a list for ``list``/``pair``).

        Must agree with :meth:`to_sql`, including on ``None`` (SQL ``NULL``).
        """
