"""Synthetic but plausible Chinese names for holders, land users, monitors and places."""
from __future__ import annotations

import numpy as np

SURNAMES = list("王李张刘陈杨赵黄周吴徐孙马朱胡郭何林高罗郑梁谢宋唐韩冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段钱汤尹黎易常武乔贺赖龚文")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞鹏辉建国春梅海波宇欣立新志宏福林亮红文斌东晨凤云")
PLACE_PARTS = ["东兴", "西岗", "南沟", "北山", "红旗", "胜利", "新立", "太平", "永安", "和平", "前进", "长青", "靠山",
               "二道", "三道", "四合", "五星", "六合", "七道", "大石头", "小城子", "柳树", "榆树", "杨木", "桦树", "松林",
               "黄泥", "白石", "青山", "石门", "双河", "富强", "新民", "保安", "万宝", "民主", "光明", "友谊", "团结", "兴隆"]
FIRM_WORDS = ["鑫源", "恒达", "宏业", "盛世", "华信", "金鼎", "东方", "长白", "北方", "瑞丰", "兴业", "中诚", "聚德", "天成",
              "嘉禾", "万通", "汇通", "安泰", "永盛", "吉祥", "龙腾", "锦程", "博远", "正阳", "泰和", "佳禾", "润达", "亚泰"]
FIRM_KINDS = {
    "0701": ["置业有限公司", "房地产开发有限公司"],
    "05": ["商贸有限公司", "商业管理有限公司", "酒店管理有限公司"],
    "06": ["实业有限公司", "制造有限公司", "物流有限公司", "科技有限公司"],
    "mining": ["矿业有限公司", "矿产开发有限公司", "建材有限公司"],
}
PUBLIC_BODIES = {"0801": "人民政府", "0803": "教育局", "0805": "卫生健康局", "0809": "城市管理局", "0810": "园林绿化管理中心",
                 "0807": "文化广电和旅游局", "0808": "体育局", "1004": "交通运输局", "1003": "公路管理局"}


def person(rng: np.random.Generator) -> str:
    given = "".join(rng.choice(GIVEN, size=int(rng.integers(1, 3))))
    return str(rng.choice(SURNAMES)) + given


def place(rng: np.random.Generator) -> str:
    return str(rng.choice(PLACE_PARTS))


def phone(rng: np.random.Generator) -> str:
    return "1" + str(rng.choice(["39", "38", "35", "58", "86", "30"])) + "".join(map(str, rng.integers(0, 10, 8)))


def firm(rng: np.random.Generator, town: str, land_use: str) -> str:
    key = land_use if land_use in FIRM_KINDS else land_use[:2]
    kinds = FIRM_KINDS.get(key, FIRM_KINDS["06"])
    return f"{short(town)}{rng.choice(FIRM_WORDS)}{rng.choice(kinds)}"


def land_user(rng: np.random.Generator, town: str, land_use: str, method: str) -> str:
    if method == "allocation":
        return short(town) + ("市" if len(short(town)) == 2 else "") + PUBLIC_BODIES.get(land_use, "人民政府")
    return firm(rng, town, land_use)


def short(name: str) -> str:
    for suffix in ("朝鲜族自治县", "满族自治县", "蒙古族自治县", "朝鲜族自治州", "自治县", "市", "县", "区"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name
