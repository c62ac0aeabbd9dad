"""The tiny world's true attribute distributions and name pools (data only).

Shares are rough and chosen for breadth, not census accuracy: 14 nationalities, 8 ethnicities, ages 18 to
80, all 16 Myers-Briggs types at their usual population shares, three genders. Names depend on nationality
and gender; in the English-speaking countries the last name also follows ethnicity ("Emily Wang").
"""
from __future__ import annotations

import math

GENDER = {"Male": 0.49, "Female": 0.49, "Non-binary": 0.02}

NATIONALITY = {
    "American": 0.18, "British": 0.10, "German": 0.08, "French": 0.07, "Mexican": 0.07, "Chinese": 0.07,
    "Canadian": 0.06, "Italian": 0.06, "Spanish": 0.06, "Brazilian": 0.06, "Indian": 0.06, "Japanese": 0.05,
    "Nigerian": 0.04, "Korean": 0.04,
}

ETHNICITY_GIVEN_NATIONALITY = {
    "American": {"White": 0.58, "Latino": 0.18, "Black": 0.12, "East Asian": 0.06, "South Asian": 0.02, "Mixed": 0.04},
    "British": {"White": 0.80, "South Asian": 0.08, "Black": 0.04, "East Asian": 0.02, "Mixed": 0.04,
                "Middle Eastern": 0.02},
    "Canadian": {"White": 0.70, "East Asian": 0.10, "South Asian": 0.08, "Black": 0.04, "Indigenous": 0.04, "Mixed": 0.04},
    "German": {"White": 0.85, "Middle Eastern": 0.08, "Mixed": 0.04, "Black": 0.03},
    "French": {"White": 0.78, "Middle Eastern": 0.10, "Black": 0.08, "Mixed": 0.04},
    "Italian": {"White": 0.93, "Mixed": 0.03, "Black": 0.02, "Middle Eastern": 0.02},
    "Spanish": {"White": 0.88, "Latino": 0.06, "Mixed": 0.03, "Middle Eastern": 0.03},
    "Mexican": {"Latino": 0.70, "Indigenous": 0.18, "White": 0.12},
    "Brazilian": {"Mixed": 0.45, "White": 0.43, "Black": 0.10, "Indigenous": 0.02},
    "Chinese": {"East Asian": 1.0},
    "Japanese": {"East Asian": 1.0},
    "Korean": {"East Asian": 1.0},
    "Indian": {"South Asian": 1.0},
    "Nigerian": {"Black": 1.0},
}

# Usual population shares of the 16 types (Myers-Briggs Foundation estimates), renormalised in world.py.
MBTI = {
    "ISTJ": 11.6, "ISFJ": 13.8, "INFJ": 1.5, "INTJ": 2.1, "ISTP": 5.4, "ISFP": 8.8, "INFP": 4.4, "INTP": 3.3,
    "ESTP": 4.3, "ESFP": 8.5, "ENFP": 8.1, "ENTP": 3.2, "ESTJ": 8.7, "ESFJ": 12.3, "ENFJ": 2.5, "ENTJ": 1.8,
}

AGE_MIN, AGE_MAX, AGE_MEAN, AGE_SD = 18, 80, 40.0, 15.0
AGE = {a: math.exp(-0.5 * ((a - AGE_MEAN) / AGE_SD) ** 2) for a in range(AGE_MIN, AGE_MAX + 1)}

# Name pools: (male first names, female first names, last names).
_ANGLO = (
    "James John Robert Michael William David Richard Joseph Thomas Charles Daniel Matthew Anthony Mark Steven "
    "Andrew Joshua Kevin Brian Ryan Jacob Ethan Noah Oliver Liam Henry Samuel Jack",
    "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Emily Emma Olivia Sophia Hannah "
    "Rachel Laura Megan Amy Lucy Grace Chloe Samantha Abigail Natalie Rebecca Claire Julia",
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson White "
    "Harris Clark Lewis Walker Hall Allen Young King Wright Scott Green Baker Adams Nelson Hill Campbell "
    "Mitchell Roberts Carter Phillips Evans Turner Parker Collins Edwards",
)
POOLS = {
    "anglo": _ANGLO,
    "German": (
        "Lukas Leon Finn Jonas Paul Felix Maximilian Elias Ben Noah Tim Jan Niklas Tobias Florian Stefan Markus "
        "Andreas Matthias Christian Sebastian Dominik Moritz Fabian",
        "Anna Lena Lea Hannah Laura Marie Sophie Julia Sarah Lisa Katharina Johanna Clara Emma Mia Leonie Franziska "
        "Sabine Petra Monika Ursula Ingrid Greta Charlotte",
        "Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf "
        "Schroder Neumann Schwarz Zimmermann Braun Kruger Hofmann Hartmann Lange Werner Krause Lehmann Kaiser "
        "Fuchs Vogel Keller",
    ),
    "French": (
        "Louis Gabriel Jules Lucas Hugo Arthur Adam Nathan Theo Antoine Pierre Nicolas Julien Mathieu Olivier "
        "Guillaume Baptiste Etienne Maxime Romain Clement Alexandre Benoit Thibault",
        "Emma Louise Camille Chloe Manon Lea Ines Juliette Alice Margaux Clemence Amelie Sophie Helene Isabelle "
        "Nathalie Celine Aurelie Elodie Mathilde Pauline Oceane Lucie Sandrine",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel "
        "Garcia David Bertrand Roux Vincent Fournier Morel Girard Andre Mercier Dupont Lambert Bonnet Francois "
        "Martinez Legrand",
    ),
    "Italian": (
        "Francesco Alessandro Lorenzo Matteo Leonardo Andrea Gabriele Riccardo Tommaso Edoardo Marco Luca Giuseppe "
        "Giovanni Antonio Paolo Stefano Roberto Davide Simone Federico Pietro Enrico Salvatore",
        "Sofia Giulia Aurora Alice Ginevra Emma Giorgia Greta Beatrice Anna Chiara Francesca Martina Sara Valentina "
        "Elena Alessia Federica Silvia Paola Laura Roberta Ilaria Lucia",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti DeLuca Mancini "
        "Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro Mariani Rinaldi Caruso Ferrara Galli "
        "Martini Leone",
    ),
    "Spanish": (
        "Hugo Martin Lucas Mateo Leo Daniel Alejandro Pablo Manuel Alvaro Adrian David Mario Diego Javier Sergio "
        "Carlos Jorge Miguel Raul Ivan Ruben Fernando Antonio",
        "Lucia Sofia Martina Maria Julia Paula Valeria Emma Daniela Carla Alba Noa Sara Carmen Laura Marta Ana "
        "Cristina Elena Pilar Rocio Nerea Irene Beatriz",
        "Garcia Fernandez Gonzalez Rodriguez Lopez Martinez Sanchez Perez Gomez Martin Jimenez Ruiz Hernandez Diaz "
        "Moreno Munoz Alvarez Romero Alonso Gutierrez Navarro Torres Dominguez Vazquez Ramos Gil Ramirez Serrano "
        "Blanco Molina",
    ),
    "Mexican": (
        "Santiago Mateo Sebastian Leonardo Emiliano Diego Miguel Angel Daniel Alejandro Jesus Jose Juan Luis Carlos "
        "Jorge Fernando Ricardo Eduardo Francisco Roberto Arturo Raul Hector Manuel",
        "Sofia Valentina Regina Camila Ximena Maria Fernanda Guadalupe Daniela Mariana Andrea Gabriela Alejandra "
        "Paola Veronica Adriana Monica Lorena Rosa Patricia Leticia Elena Carmen Isabel",
        "Hernandez Garcia Martinez Lopez Gonzalez Perez Rodriguez Sanchez Ramirez Cruz Flores Gomez Morales Vazquez "
        "Reyes Jimenez Torres Diaz Gutierrez Ruiz Mendoza Aguilar Ortiz Castillo Moreno Romero Alvarez Chavez "
        "Rivera Juarez",
    ),
    "Brazilian": (
        "Miguel Arthur Heitor Bernardo Davi Theo Lorenzo Gabriel Pedro Benjamin Matheus Lucas Rafael Gustavo Felipe "
        "Joao Thiago Bruno Rodrigo Leandro Caio Vinicius Diego Marcelo",
        "Helena Alice Laura Manuela Valentina Sophia Isabella Heloisa Luiza Julia Beatriz Mariana Camila Larissa "
        "Fernanda Amanda Leticia Juliana Aline Bruna Vanessa Patricia Renata Tatiana",
        "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Martins Carvalho "
        "Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias Nascimento Andrade Moreira Nunes Marques Machado "
        "Mendes Freitas",
    ),
    "Chinese": (
        "Wei Jun Hao Yang Lei Jie Tao Ming Qiang Bo Chen Feng Hui Jian Long Peng Yu Zhi Kai Xin Rui Hong Bin Gang",
        "Fang Li Na Min Jing Xiu Ying Hua Yan Ling Mei Xia Hong Lan Qing Yun Ting Juan Yue Lei Xue Ning Rong Dan",
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo Zheng Liang Xie Song "
        "Tang Han Feng Deng Cao Peng",
    ),
    "Japanese": (
        "Haruto Sota Yuto Hayato Haruki Ren Riku Kaito Takumi Daiki Hiroshi Takeshi Kenji Satoshi Yuki Kazuki Shota "
        "Ryota Naoki Makoto Akira Kenta Yusuke Tatsuya",
        "Yui Hina Aoi Sakura Yuna Rin Mio Akari Haruka Misaki Yuko Keiko Naomi Emi Ayaka Mai Nanami Saki Kaori Megumi "
        "Tomoko Yoko Chika Rina",
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida Yamada Sasaki Yamaguchi "
        "Matsumoto Inoue Kimura Hayashi Shimizu Yamazaki Mori Abe Ikeda Hashimoto Ishikawa Ogawa Fujita Okada "
        "Goto Hasegawa",
    ),
    "Korean": (
        "Min-jun Seo-jun Do-yun Ha-jun Ji-ho Jun-seo Joon-ho Hyun-woo Sung-min Dong-hyun Jae-won Tae-yang Ji-hoon "
        "Woo-jin Sang-hoon Young-ho Kyung-soo Jin-woo Seung-ho Min-ho Chan-woo Hyun-jin Yong-su Jae-hyun",
        "Seo-yeon Ji-woo Seo-yun Ha-eun Min-seo Ji-yoo Soo-ah Ji-min Yoo-na Eun-ji Hye-jin Su-bin Da-eun Ye-jin "
        "Min-ji Ji-hye Yeon-woo So-yeon Hyun-jung Mi-kyung Eun-young Jung-ah Hae-won Na-yeon",
        "Kim Lee Park Choi Jung Kang Cho Yoon Jang Lim Han Oh Seo Shin Kwon Hwang Ahn Song Jeon Hong Yoo Ko Moon "
        "Yang Son Bae Baek Heo Nam Noh",
    ),
    "Indian": (
        "Aarav Vivaan Aditya Vihaan Arjun Sai Reyansh Krishna Ishaan Rohan Rahul Amit Vikram Sanjay Rajesh Anil "
        "Suresh Karan Nikhil Pranav Siddharth Varun Manish Deepak",
        "Aadhya Ananya Diya Saanvi Aarohi Pari Anika Navya Priya Pooja Neha Kavya Riya Shreya Sneha Divya Lakshmi "
        "Meera Sunita Anjali Nisha Deepika Swati Radha",
        "Sharma Patel Singh Kumar Gupta Reddy Rao Iyer Nair Mehta Shah Joshi Verma Mishra Chopra Kapoor Malhotra "
        "Banerjee Chatterjee Mukherjee Das Pillai Menon Desai Bhat Agarwal Saxena Jain Pandey Kulkarni",
    ),
    "Nigerian": (
        "Chinedu Emeka Obinna Oluwaseun Tunde Ade Babajide Ibrahim Musa Yusuf Chukwuma Ikenna Olumide Segun Femi "
        "Kelechi Nnamdi Uche Abdullahi Sani Kayode Dayo Gbenga Tochukwu",
        "Chiamaka Ngozi Adaeze Funmilayo Folake Aisha Fatima Zainab Amina Nkechi Ifeoma Yetunde Bukola Titilayo "
        "Chioma Uchenna Blessing Precious Temitope Kemi Halima Hauwa Adaora Ebere",
        "Okafor Okonkwo Adeyemi Adebayo Ogunleye Eze Nwosu Obi Chukwu Balogun Bello Abubakar Mohammed Ibrahim "
        "Okoro Olawale Oyelaran Afolabi Nwachukwu Uzoma Akinola Ojo Onyeka Emenike Lawal Danjuma Okeke Ogundipe "
        "Adeleke Ezeh",
    ),
}
# Which pool a nationality draws its names from.
NATIONALITY_POOL = {n: ("anglo" if n in ("American", "British", "Canadian") else n) for n in NATIONALITY}
# In the English-speaking countries, the last name follows ethnicity: pool -> weight.
ANGLO_LAST_BY_ETHNICITY = {
    "East Asian": {"Chinese": 0.6, "Korean": 0.2, "Japanese": 0.2},
    "South Asian": {"Indian": 1.0},
    "Latino": {"Mexican": 0.7, "Spanish": 0.3},
    "Middle Eastern": {"anglo": 1.0},
}


def pool_names(pool: str, which: int) -> list:
    """Names of one pool: which = 0 male first names, 1 female first names, 2 last names."""
    return POOLS[pool][which].split()
