"""People of the tiny world's biographies: true facts, each in several phrasings (data only).

A phrasing is one sentence. ``{S}`` is the sentence's subject (pronoun, surname or full name, chosen by the
generator), ``{s}`` the same in the middle of a sentence, ``{o}`` the object pronoun and ``{p}`` the possessive.
``descs`` complete the opening "<Name> was ...". Grace Hopper's facts follow the paper's Tables 4 and 5.
"""
from __future__ import annotations

PEOPLE = [
    {"name": "Grace Hopper", "she": True, "descs": [
        "an American computer scientist and a rear admiral in the United States Navy",
        "a pioneer of computer programming",
        "an American computer scientist who helped create the COBOL programming language",
        "one of the first programmers of the Harvard Mark I computer",
        "a mathematician, a naval officer and a pioneer of computer programming",
    ], "facts": [
        ["{S} was born on December 9, 1906, in New York City.", "{S} was born in New York City in 1906.",
         "Born in New York City in 1906, {s} loved taking clocks apart as a child."],
        ["{S} studied mathematics and physics at Vassar College.", "{S} graduated from Vassar College in 1928."],
        ["{S} earned a PhD in mathematics from Yale University in 1934.",
         "In 1934 {s} received a doctorate in mathematics from Yale."],
        ["{S} joined the United States Navy Reserve during World War II.",
         "In 1943 {s} joined the Navy Reserve and was sent to Harvard."],
        ["{S} worked on the Harvard Mark I, one of the first computers.",
         "At Harvard {s} programmed the Mark I computer."],
        ["{S} developed one of the first compilers, the A-0 system.",
         "In 1952 {s} built one of the first compilers, a program that turns words into machine code."],
        ["{S} helped develop COBOL, a programming language that is still used by banks today.",
         "{P} work led to COBOL, which is still heavily used by financial institutions."],
        ["{S} popularized the word bug after {p} team found a moth inside the Harvard Mark II.",
         "A moth stuck in a relay of the Mark II made {o} famous for the term debugging."],
        ["{S} was known as Amazing Grace.", "People called {o} Amazing Grace."],
        ["{S} retired from the Navy in 1986 as a rear admiral.",
         "When {s} retired in 1986, {s} was the oldest serving officer in the Navy."],
        ["{S} died on January 1, 1992, in Arlington, Virginia.", "{S} died in 1992 and was buried at Arlington."],
        ["{S} was awarded the Presidential Medal of Freedom in 2016.", "The destroyer USS Hopper is named after {o}."],
        ["{S} liked to say that it is easier to ask forgiveness than it is to get permission."],
    ]},
    {"name": "Ada Lovelace", "she": True, "descs": [
        "an English mathematician and writer", "the first computer programmer",
        "an English mathematician who wrote the first algorithm for a machine"], "facts": [
        ["{S} was born on 10 December 1815 in London.", "{S} was born in London in 1815."],
        ["{S} was the daughter of the poet Lord Byron.", "{P} father was the poet Lord Byron."],
        ["{S} worked with Charles Babbage on his Analytical Engine.",
         "{S} became a friend and collaborator of Charles Babbage."],
        ["In 1843 {s} published notes that contain the first algorithm meant for a machine.",
         "{S} wrote the first computer program, in {p} notes on the Analytical Engine."],
        ["{S} imagined that machines could one day compose music.",
         "{S} saw that a computer could work with symbols, not only numbers."],
        ["The programming language Ada is named after {o}.", "{S} gave {p} name to the language Ada."],
        ["{S} died on 27 November 1852, at the age of 36.", "{S} died young, in 1852."],
    ]},
    {"name": "Alan Turing", "she": False, "descs": [
        "an English mathematician and computer scientist", "a father of theoretical computer science",
        "a British codebreaker and mathematician"], "facts": [
        ["{S} was born on 23 June 1912 in London.", "{S} was born in London in 1912."],
        ["{S} studied mathematics at King's College, Cambridge."],
        ["In 1936 {s} described the Turing machine.", "{S} invented the Turing machine, a model of computation."],
        ["During World War II {s} worked at Bletchley Park breaking the Enigma code.",
         "{S} helped break the German Enigma code."],
        ["In 1950 {s} proposed the Turing test for machine intelligence.",
         "{S} asked whether machines can think and proposed the imitation game."],
        ["{S} died on 7 June 1954.", "{S} died in 1954, at the age of 41."],
        ["The Turing Award, the highest prize in computing, is named after {o}."],
    ]},
    {"name": "Marie Curie", "she": True, "descs": [
        "a Polish and French physicist and chemist", "a pioneer of research on radioactivity",
        "the first woman to win a Nobel Prize"], "facts": [
        ["{S} was born on 7 November 1867 in Warsaw.", "{S} was born in Warsaw in 1867."],
        ["{S} discovered polonium and radium with {p} husband Pierre Curie.",
         "Together with Pierre Curie, {s} discovered two new elements."],
        ["{S} won the Nobel Prize in Physics in 1903.", "In 1903 {s} shared the Nobel Prize in Physics."],
        ["{S} won the Nobel Prize in Chemistry in 1911."],
        ["{S} is the only person to win Nobel Prizes in two different sciences."],
        ["{S} died on 4 July 1934.", "{S} died in 1934 from an illness caused by radiation."],
    ]},
    {"name": "Albert Einstein", "she": False, "descs": [
        "a German-born theoretical physicist", "one of the greatest physicists of all time",
        "the physicist who developed the theory of relativity"], "facts": [
        ["{S} was born on 14 March 1879 in Ulm.", "{S} was born in Ulm, Germany, in 1879."],
        ["In 1905 {s} published the special theory of relativity.",
         "{S} worked at a patent office when {s} wrote {p} famous papers of 1905."],
        ["{S} showed that energy and mass are related by E = mc2."],
        ["{S} won the Nobel Prize in Physics in 1921 for explaining the photoelectric effect."],
        ["In 1933 {s} moved to the United States and joined the Institute for Advanced Study in Princeton."],
        ["{S} died on 18 April 1955 in Princeton.", "{S} died in 1955."],
    ]},
    {"name": "Isaac Newton", "she": False, "descs": [
        "an English mathematician and physicist", "one of the most influential scientists in history"], "facts": [
        ["{S} was born in 1643 in Woolsthorpe, England.", "{S} was born in Woolsthorpe in 1643."],
        ["In 1687 {s} published the Principia.", "{S} wrote the Principia, published in 1687."],
        ["{S} described the laws of motion and universal gravitation.",
         "{S} explained gravity with a single law for the apple and the moon."],
        ["{S} developed calculus.", "{S} invented calculus at about the same time as Leibniz."],
        ["{S} built the first practical reflecting telescope."],
        ["{S} was president of the Royal Society.", "{S} led the Royal Society for more than twenty years."],
        ["{S} died in 1727.", "{S} died in London in 1727."],
    ]},
    {"name": "Charles Darwin", "she": False, "descs": [
        "an English naturalist", "the naturalist who explained evolution by natural selection"], "facts": [
        ["{S} was born on 12 February 1809 in Shrewsbury.", "{S} was born in Shrewsbury in 1809."],
        ["{S} sailed around the world on HMS Beagle.", "As a young man {s} spent five years on HMS Beagle."],
        ["In 1859 {s} published On the Origin of Species.", "{S} wrote On the Origin of Species."],
        ["{S} proposed the theory of evolution by natural selection."],
        ["{S} died on 19 April 1882.", "{S} died in 1882 and was buried in Westminster Abbey."],
    ]},
    {"name": "Rosalind Franklin", "she": True, "descs": [
        "an English chemist", "an English chemist and X-ray crystallographer"], "facts": [
        ["{S} was born on 25 July 1920 in London.", "{S} was born in London in 1920."],
        ["{S} studied at Newnham College, Cambridge."],
        ["{S} used X-ray crystallography to study molecules."],
        ["{P} Photo 51 showed the double helix structure of DNA.",
         "{S} made the X-ray image that revealed the shape of DNA."],
        ["{S} also studied the structure of viruses.", "{S} studied the tobacco mosaic virus."],
        ["{S} died on 16 April 1958, at the age of 37.", "{S} died in 1958."],
    ]},
    {"name": "Katherine Johnson", "she": True, "descs": [
        "an American mathematician", "a mathematician at NASA"], "facts": [
        ["{S} was born on August 26, 1918, in White Sulphur Springs, West Virginia.",
         "{S} was born in West Virginia in 1918."],
        ["{S} worked as a human computer at NASA.", "{S} joined NACA, the agency that became NASA, in 1953."],
        ["{S} calculated the flight path of Alan Shepard, the first American in space.",
         "{S} checked the orbit of John Glenn by hand."],
        ["{S} received the Presidential Medal of Freedom in 2015."],
        ["The film Hidden Figures tells {p} story."],
        ["{S} died on February 24, 2020, at the age of 101.", "{S} died in 2020."],
    ]},
    {"name": "Nikola Tesla", "she": False, "descs": [
        "a Serbian-American inventor and electrical engineer", "an inventor who shaped modern electricity"], "facts": [
        ["{S} was born on 10 July 1856 in Smiljan.", "{S} was born in 1856 in Smiljan, in what is now Croatia."],
        ["{S} developed the alternating current system.", "{S} designed the alternating current induction motor."],
        ["{S} worked for Thomas Edison for a short time.", "{S} moved to New York in 1884 to work for Edison."],
        ["The unit of magnetic flux density, the tesla, is named after {o}."],
        ["{S} died on 7 January 1943 in New York City.", "{S} died in New York in 1943."],
    ]},
    {"name": "Thomas Edison", "she": False, "descs": [
        "an American inventor and businessman", "one of the most famous inventors in history"], "facts": [
        ["{S} was born on February 11, 1847, in Milan, Ohio.", "{S} was born in Ohio in 1847."],
        ["{S} invented the phonograph.", "In 1877 {s} recorded sound with {p} phonograph."],
        ["{S} developed a practical light bulb.", "{S} made the electric light bulb practical."],
        ["{S} ran a famous laboratory at Menlo Park.", "{P} laboratory at Menlo Park was an invention factory."],
        ["{S} held more than a thousand patents."],
        ["{S} died on October 18, 1931.", "{S} died in 1931."],
    ]},
    {"name": "Dennis Ritchie", "she": False, "descs": [
        "an American computer scientist", "the creator of the C programming language"], "facts": [
        ["{S} was born on September 9, 1941, in Bronxville, New York.", "{S} was born in New York in 1941."],
        ["{S} created the C programming language.", "{S} designed C in the early 1970s."],
        ["{S} created the Unix operating system with Ken Thompson at Bell Labs.",
         "Together with Ken Thompson, {s} built Unix."],
        ["{S} received the Turing Award in 1983."],
        ["{S} died on October 12, 2011.", "{S} died in 2011."],
    ]},
    {"name": "John von Neumann", "she": False, "descs": [
        "a Hungarian-American mathematician", "a mathematician and a pioneer of computing"], "facts": [
        ["{S} was born on December 28, 1903, in Budapest.", "{S} was born in Budapest in 1903."],
        ["{S} described the computer design now called the von Neumann architecture."],
        ["{S} founded game theory with Oskar Morgenstern.",
         "In 1944 {s} wrote Theory of Games and Economic Behavior."],
        ["{S} worked on the Manhattan Project."],
        ["{S} was a professor at the Institute for Advanced Study in Princeton."],
        ["{S} died on February 8, 1957.", "{S} died in 1957."],
    ]},
    {"name": "Claude Shannon", "she": False, "descs": [
        "an American mathematician and electrical engineer", "the father of information theory"], "facts": [
        ["{S} was born on April 30, 1916, in Petoskey, Michigan.", "{S} was born in Michigan in 1916."],
        ["In 1948 {s} published A Mathematical Theory of Communication.", "{S} founded information theory."],
        ["{P} master's thesis showed that Boolean algebra can design switching circuits."],
        ["{S} worked at Bell Labs.", "{S} spent many years at Bell Labs."],
        ["{S} built a mechanical mouse that could learn a maze."],
        ["{S} died on February 24, 2001.", "{S} died in 2001."],
    ]},
    {"name": "Charles Babbage", "she": False, "descs": [
        "an English mathematician and mechanical engineer", "the father of the computer"], "facts": [
        ["{S} was born on 26 December 1791 in London.", "{S} was born in London in 1791."],
        ["{S} designed the Difference Engine.", "{S} designed a machine to compute mathematical tables."],
        ["{S} designed the Analytical Engine, a general purpose computer.",
         "{P} Analytical Engine had a memory and a mill."],
        ["{S} was Lucasian Professor of Mathematics at Cambridge."],
        ["{S} worked with Ada Lovelace.", "Ada Lovelace wrote notes on {p} engine."],
        ["{S} died on 18 October 1871.", "{S} died in 1871."],
    ]},
    {"name": "Hedy Lamarr", "she": True, "descs": [
        "an Austrian-American actress and inventor", "a Hollywood star and an inventor"], "facts": [
        ["{S} was born on 9 November 1914 in Vienna.", "{S} was born in Vienna in 1914."],
        ["{S} starred in Hollywood films such as Samson and Delilah."],
        ["During World War II {s} invented frequency hopping with George Antheil.",
         "{S} and George Antheil patented a frequency hopping system in 1942."],
        ["{P} idea later helped make technologies such as Wi-Fi and Bluetooth possible."],
        ["{S} died on January 19, 2000.", "{S} died in 2000."],
    ]},
    {"name": "Florence Nightingale", "she": True, "descs": [
        "an English social reformer and statistician", "the founder of modern nursing"], "facts": [
        ["{S} was born on 12 May 1820 in Florence, Italy.", "{S} was born in Florence in 1820."],
        ["{S} cared for wounded soldiers during the Crimean War."],
        ["{S} was known as the Lady with the Lamp.", "Soldiers called {o} the Lady with the Lamp."],
        ["In 1860 {s} founded a nursing school at St Thomas' Hospital in London."],
        ["{S} used statistics and diagrams to show how many soldiers died of disease."],
        ["{S} died on 13 August 1910.", "{S} died in 1910."],
    ]},
    {"name": "Galileo Galilei", "she": False, "descs": [
        "an Italian astronomer and physicist", "the father of modern astronomy"], "facts": [
        ["{S} was born on 15 February 1564 in Pisa.", "{S} was born in Pisa in 1564."],
        ["{S} improved the telescope.", "{S} built telescopes that magnified twenty times."],
        ["In 1610 {s} discovered the four largest moons of Jupiter."],
        ["{S} supported the idea that the Earth moves around the Sun."],
        ["In 1633 {s} was tried by the Roman Inquisition."],
        ["{S} died on 8 January 1642.", "{S} died in 1642."],
    ]},
    {"name": "Louis Pasteur", "she": False, "descs": [
        "a French chemist and microbiologist", "the scientist who gave his name to pasteurization"], "facts": [
        ["{S} was born on 27 December 1822 in Dole.", "{S} was born in Dole, France, in 1822."],
        ["{S} invented pasteurization.", "{S} showed that heating milk kills germs."],
        ["{S} developed vaccines against rabies and anthrax."],
        ["{S} helped prove the germ theory of disease."],
        ["{S} founded the Pasteur Institute in Paris."],
        ["{S} died on 28 September 1895.", "{S} died in 1895."],
    ]},
    {"name": "Rachel Carson", "she": True, "descs": [
        "an American marine biologist and writer", "a writer who started the modern environmental movement"],
     "facts": [
        ["{S} was born on May 27, 1907, in Springdale, Pennsylvania.", "{S} was born in Pennsylvania in 1907."],
        ["{S} worked for the United States Fish and Wildlife Service."],
        ["In 1962 {s} published Silent Spring.", "{S} wrote the book Silent Spring."],
        ["{S} warned about the dangers of pesticides such as DDT."],
        ["{S} died on April 14, 1964.", "{S} died in 1964."],
    ]},
    {"name": "Srinivasa Ramanujan", "she": False, "descs": [
        "an Indian mathematician", "a largely self-taught mathematical genius"], "facts": [
        ["{S} was born on 22 December 1887 in Erode.", "{S} was born in Erode, India, in 1887."],
        ["{S} taught himself mathematics from books.", "{S} had almost no formal training in mathematics."],
        ["{S} worked with G. H. Hardy at Trinity College, Cambridge."],
        ["{S} made discoveries about numbers, infinite series and continued fractions."],
        ["In 1918 {s} was elected a Fellow of the Royal Society."],
        ["{S} died on 26 April 1920, at the age of 32.", "{S} died in 1920."],
    ]},
    {"name": "Emmy Noether", "she": True, "descs": [
        "a German mathematician", "one of the founders of abstract algebra"], "facts": [
        ["{S} was born on 23 March 1882 in Erlangen.", "{S} was born in Erlangen in 1882."],
        ["{S} proved Noether's theorem, which links symmetries to conservation laws."],
        ["{S} taught at the University of Gottingen."],
        ["In 1933 {s} left Germany and went to Bryn Mawr College."],
        ["{S} did fundamental work in abstract algebra."],
        ["{S} died on 14 April 1935.", "{S} died in 1935."],
    ]},
]
