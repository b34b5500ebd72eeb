"""The paper's figures as typed from DESIGN.md §3 (Luo, Darrell & Bar, ICML 2025), line for
line, so the two can be diffed. `paper.py` turns them into reported submissions; nothing else
reads them.
"""

# Column order of the cross-modal tables (2, 10, 11, 12).
TASKS = (
    "country_capital",
    "country_currency",
    "animal_latin",
    "animal_young",
    "food_color",
    "food_flavor",
)
# Column order of Table 4.
VQA_TASKS = ("vqa_food_class", "vqa_shirt_color", "vqa_man_holding")

# model | method | Capital Currency Latin Young Color Flavor / Avg
TABLE_2 = """
— | Random (majority) | .00 .12 .00 .18 .24 .31 / .14
LLaVA-1.5 | No Context | .00 .00 .00 .00 .00 .00 / .00
LLaVA-1.5 | Text Examples Prompt | .02 .18 .03 .23 .28 .37 / .18
LLaVA-1.5 | Text Examples Patch | .31 .30 .26 .18 .53 .31 / .32
Mantis-Fuyu | No Context | .00 .00 .00 .00 .00 .00 / .00
Mantis-Fuyu | Image Examples Prompt | .11 .13 .24 .05 .34 .23 / .18
Mantis-Fuyu | Image Examples Patch | .17 .03 .16 .05 .50 .31 / .20
Mantis-Fuyu | Text Examples Prompt | .09 .06 .08 .02 .23 .04 / .09
Mantis-Fuyu | Text Examples Patch | .32 .23 .36 .09 .51 .36 / .31
Idefics2 | No Context | .03 .00 .03 .00 .01 .01 / .01
Idefics2 | Image Examples Prompt | .71 .57 .43 .12 .41 .35 / .43
Idefics2 | Image Examples Patch | .58 .32 .40 .03 .39 .17 / .31
Idefics2 | Text Examples Prompt | .11 .03 .41 .13 .21 .18 / .18
Idefics2 | Text Examples Patch | .61 .40 .48 .62 .53 .39 / .51
"""

# Table 3: mean cosine similarity of the base LLM's and the VLM's task vectors (same task), and
# of vectors of mismatched tasks ("Random": one figure, no model stated).
TABLE_3 = """
Random (mismatched) | .58
LLaVA-1.5 | .95
Idefics2 | .89
"""

# Table 4, VQA on Idefics2: model | method | Food-Class Shirt-Color Man-Holding / Avg. "Text" is
# the image's dense caption.
TABLE_4 = """
Idefics2 | Image Examples Prompt | .70 .41 .46 / .52
Idefics2 | Image Examples Patch | .49 .19 .39 / .36
Idefics2 | Text Examples Prompt | .85 .48 .56 / .63
Idefics2 | Text Examples Patch | .93 .56 .59 / .69
"""

# Table 10, Idefics2 in its chat template: columns as Table 2.
TABLE_10 = """
Idefics2 | No Context | .00 .00 .07 .00 .00 .00 / .01
Idefics2 | Image Examples Prompt | .74 .53 .44 .12 .43 .35 / .44
Idefics2 | Image Examples Patch | .78 .09 .40 .02 .02 .01 / .22
Idefics2 | Text Examples Prompt | .16 .06 .24 .16 .17 .12 / .15
Idefics2 | Text Examples Patch | .70 .44 .50 .64 .54 .40 / .54
"""

# Table 11, LLM -> VLM (text examples, image queries): columns as Table 2.
TABLE_11 = """
LLaVA-1.5 | VLM-VLM | .31 .30 .26 .18 .53 .31 / .32
LLaVA-1.5 | LLM-VLM (Vicuna) | .33 .32 .25 .33 .53 .45 / .37
Idefics2 | VLM-VLM | .61 .40 .48 .62 .53 .39 / .51
Idefics2 | LLM-VLM (Mistral) | .57 .58 .46 .55 .54 .39 / .52
"""

# Table 12, patch for each spec -> query pair (I = image, T = text): columns as Table 2;
# "–" = not run in the paper.
TABLE_12 = """
LLaVA-1.5 | I→I | –
LLaVA-1.5 | T→I | .31 .30 .26 .18 .53 .31 / .32
LLaVA-1.5 | T→T | .97 .58 .77 .20 .63 .41 / .59
LLaVA-1.5 | I→T | –
Mantis-Fuyu | I→I | .17 .03 .16 .05 .50 .31 / .20
Mantis-Fuyu | T→I | .32 .23 .36 .09 .51 .36 / .31
Mantis-Fuyu | T→T | .46 .30 .48 .18 .28 .36 / .34
Mantis-Fuyu | I→T | .31 .01 .36 .05 .40 .34 / .25
Idefics2 | I→I | .58 .32 .40 .03 .39 .17 / .31
Idefics2 | T→I | .61 .40 .48 .62 .53 .39 / .51
Idefics2 | T→T | .97 .61 .74 .54 .63 .41 / .65
Idefics2 | I→T | .81 .43 .58 .04 .40 .27 / .42
"""

# Table 5, task overriding (DESIGN.md §3): method | Semantic Syntax Creative Factual.
TABLE_5 = """
Original | .10 .15 .08 .15
+ System Prompt | .09 .49 .06 .15
+ Instruction Patch | .36 .59 .65 .42
"""
